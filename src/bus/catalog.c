/*
 * catalog.c - the tables of the event catalog and the functions that read them.
 *
 * Adding an event is adding rows here (and its name macro in catalog.h); nothing else
 * in the code base spells an event name. This file only describes and checks events:
 * it must not publish, enqueue or emit anything.
 */
#include "bus/catalog.h"

#include "core/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---- services ----------------------------------------------------------------------- */

/* NULL-terminated so that it doubles as the choices of the envelope's `source`. */
static const char *const service_names[BUS_SERVICE_COUNT + 1] = {
    [BUS_SVC_GATEWAY] = "gateway",
    [BUS_SVC_ORDER] = "order-service",
    [BUS_SVC_PRINT] = "print-service",
    [BUS_SVC_SHIPPING] = "shipping-service",
    [BUS_SVC_GRIDFLOCK] = "gridflock-service",
    [BUS_SERVICE_COUNT] = NULL,
};

const char *bus_service_name(bus_service s)
{
    if ((int)s < 0 || s >= BUS_SERVICE_COUNT)
        return "unknown";
    return service_names[s];
}

int bus_service_parse(const char *name, bus_service *out)
{
    if (name)
        for (int i = 0; i < BUS_SERVICE_COUNT; i++)
            if (strcmp(service_names[i], name) == 0) {
                *out = (bus_service)i;
                return 0;
            }
    return F3_EINVAL;
}

const char *bus_field_type_name(bus_field_type t)
{
    switch (t) {
    case BUS_FIELD_STRING:
        return "string";
    case BUS_FIELD_INTEGER:
        return "integer";
    case BUS_FIELD_NUMBER:
        return "number";
    case BUS_FIELD_BOOLEAN:
        return "boolean";
    case BUS_FIELD_ENUM:
        return "enum";
    case BUS_FIELD_ARRAY:
        return "array";
    case BUS_FIELD_OBJECT:
        return "object";
    }
    return "unknown";
}

/* ---- field tables ------------------------------------------------------------------- */

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Required string. */
#define F_STR(n, d, ex)                                                                            \
    {                                                                                              \
        .name = (n), .type = BUS_FIELD_STRING, .required = true, .doc = (d), .example = (ex)       \
    }
/* Required string that may be null. */
#define F_STR_NULL(n, d, ex)                                                                       \
    {                                                                                              \
        .name = (n), .type = BUS_FIELD_STRING, .required = true, .nullable = true, .doc = (d),     \
        .example = (ex)                                                                            \
    }
#define F_INT(n, d, ex)                                                                            \
    {                                                                                              \
        .name = (n), .type = BUS_FIELD_INTEGER, .required = true, .doc = (d), .example = (ex)      \
    }
#define F_ENUM(n, c, d)                                                                            \
    {                                                                                              \
        .name = (n), .type = BUS_FIELD_ENUM, .required = true, .doc = (d), .choices = (c)          \
    }
#define F_ARRAY(n, it, d)                                                                          \
    {                                                                                              \
        .name = (n), .type = BUS_FIELD_ARRAY, .required = true, .doc = (d), .items = (it),         \
        .item_count = COUNT(it)                                                                    \
    }

const bus_field bus_envelope_fields[] = {
    {.name = "eventId",
     .type = BUS_FIELD_STRING,
     .required = true,
     .format = "uuid",
     .doc = "UUID v4 of this event; consumers deduplicate on it (idempotency)",
     .example = "\"0b6f1d3e-7a52-4c1e-9d0a-3f2b8c4e5a61\""},
    {.name = "eventType",
     .type = BUS_FIELD_STRING,
     .required = true,
     .doc = "the event type, e.g. order.created"},
    {.name = "source",
     .type = BUS_FIELD_ENUM,
     .required = true,
     .choices = service_names,
     .doc = "the publishing service"},
    {.name = "tenantId",
     .type = BUS_FIELD_STRING,
     .required = true,
     .doc = "the tenant (shop) the event belongs to",
     .example = "\"default\""},
    {.name = "timestamp",
     .type = BUS_FIELD_STRING,
     .required = true,
     .format = "date-time",
     .doc = "when the event was created, ISO-8601 UTC with milliseconds",
     .example = "\"2026-11-22T08:15:30.123Z\""},
    {.name = "correlationId",
     .type = BUS_FIELD_STRING,
     .required = false,
     .doc = "correlation id of the request or job that caused the event, for tracing",
     .example = "\"req-5f2c9a\""},
};
const size_t bus_envelope_field_count = COUNT(bus_envelope_fields);

#define EX_ORDER_ID     "\"7d3c2a1e-4b5f-4e6a-8c9d-0e1f2a3b4c5d\""
#define EX_LINE_ITEM_ID "\"3f9a1c2b-8d7e-4f60-a5b4-c3d2e1f0a9b8\""
#define EX_PRINT_JOB_ID "\"c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f\""
#define EX_SHIPMENT_ID  "\"e5f4d3c2-b1a0-4f9e-8d7c-6b5a4f3e2d1c\""
#define EX_BATCH_ID     "\"9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d\""

#define ORDER_ID     F_STR("orderId", "id of the order", EX_ORDER_ID)
#define LINE_ITEM_ID F_STR("lineItemId", "id of the order's line item", EX_LINE_ITEM_ID)
#define PRINT_JOB_ID F_STR("printJobId", "id of the print job", EX_PRINT_JOB_ID)
#define SHIPMENT_ID  F_STR("shipmentId", "id of the shipment", EX_SHIPMENT_ID)
#define ERROR_MESSAGE                                                                              \
    F_STR("errorMessage", "what went wrong, for operators", "\"Nozzle clog detected\"")
#define GRID_SKU       F_STR("sku", "GridFlock product SKU", "\"GRID-2x3-MAG-NONE\"")
#define PREVIOUS_PJ    F_STR("previousStatus", "status before the change", "\"QUEUED\"")
#define NEW_PJ         F_STR("newStatus", "status after the change", "\"PRINTING\"")
#define STOCK_BATCH_ID F_STR("stockBatchId", "id of the stock replenishment batch", EX_BATCH_ID)

static const bus_field order_line_item_fields[] = {
    LINE_ITEM_ID,
    F_STR("productSku", "SKU of the ordered product", "\"BOX-10x10-RED\""),
    F_INT("quantity", "number of units ordered", "2"),
};

static const bus_field order_created_fields[] = {
    ORDER_ID,
    F_ARRAY("lineItems", order_line_item_fields, "the order's line items"),
};

static const bus_field order_ref_fields[] = {ORDER_ID};

static const bus_field print_job_ref_fields[] = {PRINT_JOB_ID, ORDER_ID, LINE_ITEM_ID};

static const bus_field print_job_failed_fields[] = {
    PRINT_JOB_ID,
    ORDER_ID,
    LINE_ITEM_ID,
    ERROR_MESSAGE,
};

static const bus_field print_job_status_changed_fields[] = {
    PRINT_JOB_ID, ORDER_ID, LINE_ITEM_ID, PREVIOUS_PJ, NEW_PJ,
};

static const bus_field shipment_created_fields[] = {
    SHIPMENT_ID,
    ORDER_ID,
    F_STR_NULL("trackingNumber", "carrier tracking number; null until the carrier assigns one",
               "\"3SYZXG132912330\""),
    F_STR_NULL("trackingUrl", "public tracking page; null if unknown",
               "\"https://tracking.example.com/3SYZXG132912330\""),
    F_STR_NULL("carrier", "carrier code; null if unknown", "\"postnl\""),
};

static const bus_field shipment_status_changed_fields[] = {
    SHIPMENT_ID,
    ORDER_ID,
    F_STR("previousStatus", "shipment status before the change", "\"Ready to send\""),
    F_STR("newStatus", "shipment status after the change", "\"En route to sorting center\""),
};

static const bus_field gridflock_mapping_ready_fields[] = {ORDER_ID, LINE_ITEM_ID, GRID_SKU};

static const char *const gridflock_steps[] = {
    "stl-generation", "slicing", "simplyprint-upload", "mapping-creation", NULL,
};

static const bus_field gridflock_pipeline_failed_fields[] = {
    ORDER_ID,
    LINE_ITEM_ID,
    GRID_SKU,
    ERROR_MESSAGE,
    F_ENUM("failedStep", gridflock_steps, "the pipeline step that failed"),
};

static const char *const stock_purposes[] = {"STOCK", NULL};

static const bus_field stock_replenishment_fields[] = {
    PRINT_JOB_ID,
    F_STR_NULL("fileId", "SimplyPrint file to print; null if not uploaded yet", "\"sp-file-4711\""),
    F_ENUM("purpose", stock_purposes, "why the job is printed: building stock"),
    STOCK_BATCH_ID,
};

static const bus_field stock_batch_completed_fields[] = {
    STOCK_BATCH_ID,
    F_STR("productMappingId", "product mapping whose stock grows",
          "\"b2c3d4e5-f6a7-4b8c-9d0e-1f2a3b4c5d6e\""),
    F_INT("totalJobs", "number of print jobs in the batch", "4"),
};

static const char *const integration_actions[] = {"connected", "disconnected", NULL};

static const bus_field integration_changed_fields[] = {
    F_ENUM("action", integration_actions, "whether credentials were connected or disconnected"),
};

/* ---- cross-service events ----------------------------------------------------------- */

#define FIELDS(a) .fields = (a), .field_count = COUNT(a)
#define SUB(svc, name, what)                                                                       \
    {                                                                                              \
        .service = (svc), .internal_name = (name), .handling = (what)                              \
    }

const bus_event_def bus_catalog[] = {
    {.type = BUS_EV_ORDER_CREATED,
     .version = 1,
     .group = "Order",
     .summary = "A new order was ingested from Shopify (webhook or backfill).",
     .publisher = BUS_SVC_ORDER,
     .publisher_internal = BUS_IEV_ORDER_CREATED,
     .subscribers = {SUB(BUS_SVC_PRINT, BUS_IEV_ORDER_CREATED,
                         "prepares print jobs for the order's line items")},
     .subscriber_count = 1,
     FIELDS(order_created_fields)},
    {.type = BUS_EV_ORDER_READY_FOR_FULFILLMENT,
     .version = 1,
     .group = "Order",
     .summary = "Every print job of the order is complete; the order can be shipped.",
     .publisher = BUS_SVC_ORDER,
     .publisher_internal = BUS_IEV_ORDER_READY_FOR_FULFILLMENT,
     .subscribers = {SUB(BUS_SVC_SHIPPING, BUS_IEV_ORCHESTRATION_ORDER_READY_FOR_FULFILLMENT,
                         "creates the Sendcloud shipment and label")},
     .subscriber_count = 1,
     FIELDS(order_ref_fields)},
    {.type = BUS_EV_ORDER_CANCELLED,
     .version = 1,
     .group = "Order",
     .summary = "The order was cancelled.",
     .publisher = BUS_SVC_ORDER,
     .publisher_internal = BUS_IEV_ORDER_CANCELLED,
     .subscribers = {SUB(BUS_SVC_PRINT, BUS_IEV_ORDER_CANCELLED,
                         "cancels the order's print jobs that have not finished"),
                     SUB(BUS_SVC_SHIPPING, BUS_IEV_ORDER_CANCELLED,
                         "cancels the order's shipment if it was not handed to the carrier")},
     .subscriber_count = 2,
     FIELDS(order_ref_fields)},
    {.type = BUS_EV_PRINT_JOB_COMPLETED,
     .version = 1,
     .group = "Print job",
     .summary = "A print job finished printing.",
     .publisher = BUS_SVC_PRINT,
     .publisher_internal = BUS_IEV_PRINTJOB_COMPLETED,
     .subscribers = {SUB(BUS_SVC_ORDER, BUS_IEV_PRINTJOB_COMPLETED,
                         "loads the print job; orchestration checks whether the order is ready "
                         "for fulfillment")},
     .subscriber_count = 1,
     FIELDS(print_job_ref_fields)},
    {.type = BUS_EV_PRINT_JOB_FAILED,
     .version = 1,
     .group = "Print job",
     .summary = "A print job failed.",
     .publisher = BUS_SVC_PRINT,
     .publisher_internal = BUS_IEV_PRINTJOB_FAILED,
     .subscribers = {SUB(BUS_SVC_ORDER, BUS_IEV_PRINTJOB_FAILED,
                         "loads the print job; orchestration records the failure and operators "
                         "are notified")},
     .subscriber_count = 1,
     FIELDS(print_job_failed_fields)},
    {.type = BUS_EV_PRINT_JOB_STATUS_CHANGED,
     .version = 1,
     .group = "Print job",
     .summary = "A print job moved from one status to another.",
     .publisher = BUS_SVC_PRINT,
     .publisher_internal = BUS_IEV_PRINTJOB_STATUS_CHANGED,
     .subscribers = {SUB(BUS_SVC_ORDER, BUS_IEV_PRINTJOB_STATUS_CHANGED,
                         "orchestration tracks progress and revives an order whose jobs are "
                         "requeued")},
     .subscriber_count = 1,
     FIELDS(print_job_status_changed_fields)},
    {.type = BUS_EV_PRINT_JOB_CANCELLED,
     .version = 1,
     .group = "Print job",
     .summary = "A print job was cancelled.",
     .publisher = BUS_SVC_PRINT,
     .publisher_internal = BUS_IEV_PRINTJOB_CANCELLED,
     .subscribers = {SUB(BUS_SVC_ORDER, BUS_IEV_PRINTJOB_CANCELLED,
                         "loads the print job; orchestration re-evaluates the order")},
     .subscriber_count = 1,
     FIELDS(print_job_ref_fields)},
    {.type = BUS_EV_SHIPMENT_CREATED,
     .version = 1,
     .group = "Shipment",
     .summary = "A Sendcloud shipment (with label) was created for an order.",
     .publisher = BUS_SVC_SHIPPING,
     .publisher_internal = BUS_IEV_SHIPMENT_CREATED,
     .subscribers = {SUB(BUS_SVC_ORDER, BUS_IEV_SHIPMENT_CREATED,
                         "creates the Shopify fulfillment with the tracking details")},
     .subscriber_count = 1,
     FIELDS(shipment_created_fields)},
    {.type = BUS_EV_SHIPMENT_STATUS_CHANGED,
     .version = 1,
     .group = "Shipment",
     .summary = "Sendcloud reported a new shipment status (webhook or reconciliation).",
     .publisher = BUS_SVC_SHIPPING,
     .publisher_internal = BUS_IEV_SENDCLOUD_SHIPMENT_STATUS_CHANGED,
     .subscribers = {SUB(BUS_SVC_ORDER, BUS_IEV_SHIPMENT_STATUS_CHANGED,
                         "updates the order's shipment status")},
     .subscriber_count = 1,
     FIELDS(shipment_status_changed_fields)},
    {.type = BUS_EV_GRIDFLOCK_MAPPING_READY,
     .version = 1,
     .group = "GridFlock",
     .summary = "The GridFlock pipeline finished (STL, slice, upload, mapping) or found an "
                "existing mapping for the line item's SKU.",
     .publisher = BUS_SVC_GRIDFLOCK,
     .publisher_internal = BUS_IEV_GRIDFLOCK_MAPPING_READY,
     .subscribers = {SUB(BUS_SVC_ORDER, BUS_IEV_GRIDFLOCK_MAPPING_READY,
                         "orchestration continues the line item with the new mapping")},
     .subscriber_count = 1,
     FIELDS(gridflock_mapping_ready_fields)},
    {.type = BUS_EV_GRIDFLOCK_PIPELINE_FAILED,
     .version = 1,
     .group = "GridFlock",
     .summary = "A step of the GridFlock pipeline failed for a line item.",
     .publisher = BUS_SVC_GRIDFLOCK,
     .publisher_internal = BUS_IEV_GRIDFLOCK_PIPELINE_FAILED,
     .subscribers = {SUB(BUS_SVC_ORDER, BUS_IEV_GRIDFLOCK_PIPELINE_FAILED,
                         "marks the line item FAILED")},
     .subscriber_count = 1,
     FIELDS(gridflock_pipeline_failed_fields)},
    {.type = BUS_EV_STOCK_REPLENISHMENT_SCHEDULED,
     .version = 1,
     .group = "Inventory",
     .summary = "The stock replenishment scheduler created a print job for stock; one event "
                "per print job of the batch.",
     .publisher = BUS_SVC_ORDER,
     .publisher_internal = NULL,
     .subscribers = {SUB(BUS_SVC_PRINT, BUS_IEV_STOCK_REPLENISHMENT_SCHEDULED,
                         "creates the print job in SimplyPrint")},
     .subscriber_count = 1,
     FIELDS(stock_replenishment_fields)},
    {.type = BUS_EV_STOCK_BATCH_COMPLETED,
     .version = 1,
     .group = "Inventory",
     .summary = "Every print job of a stock batch completed; the stock was incremented "
                "atomically. Informational (monitoring and logging).",
     .publisher = BUS_SVC_ORDER,
     .publisher_internal = NULL,
     .subscriber_count = 0,
     FIELDS(stock_batch_completed_fields)},
    {.type = BUS_EV_INTEGRATION_SIMPLYPRINT_CHANGED,
     .version = 1,
     .group = "Integration",
     .summary = "SimplyPrint credentials were connected or disconnected; consumers "
                "re-initialise their client without a restart.",
     .publisher = BUS_SVC_PRINT,
     .publisher_internal = NULL,
     .subscribers = {SUB(BUS_SVC_ORDER, BUS_IEV_INTEGRATION_SIMPLYPRINT_CHANGED,
                         "re-initialises (connected) or disables (disconnected) its SimplyPrint "
                         "client")},
     .subscriber_count = 1,
     FIELDS(integration_changed_fields)},
    {.type = BUS_EV_INTEGRATION_SENDCLOUD_CHANGED,
     .version = 1,
     .group = "Integration",
     .summary = "Sendcloud credentials were connected or disconnected; consumers "
                "re-initialise their client without a restart.",
     .publisher = BUS_SVC_SHIPPING,
     .publisher_internal = NULL,
     .subscribers = {SUB(BUS_SVC_ORDER, BUS_IEV_INTEGRATION_SENDCLOUD_CHANGED,
                         "re-initialises (connected) or disables (disconnected) its Sendcloud "
                         "client")},
     .subscriber_count = 1,
     FIELDS(integration_changed_fields)},
};
const size_t bus_catalog_count = COUNT(bus_catalog);

/* ---- internal events ----------------------------------------------------------------- */

#define IEV(svc, grp, n, s)                                                                        \
    {                                                                                              \
        .name = (n), .service = (svc), .group = (grp), .summary = (s)                              \
    }

const bus_internal_event_def bus_internal_events[] = {
    /* order service */
    IEV(BUS_SVC_ORDER, "ORDER_EVENTS", BUS_IEV_ORDER_CREATED,
        "an order was created from Shopify; orchestration, the publisher bridge, live updates "
        "and web push listen"),
    IEV(BUS_SVC_ORDER, "ORDER_EVENTS", BUS_IEV_ORDER_STATUS_CHANGED,
        "an order changed status; live updates and web push listen"),
    IEV(BUS_SVC_ORDER, "ORDER_EVENTS", BUS_IEV_ORDER_CANCELLED,
        "an order was cancelled; cancellation, the publisher bridge and live updates listen"),
    IEV(BUS_SVC_ORDER, "ORDER_EVENTS", BUS_IEV_ORDER_READY_FOR_FULFILLMENT,
        "orchestration found every print job complete (also ORCHESTRATION_EVENTS); "
        "fulfillment, the publisher bridge and live updates listen"),
    IEV(BUS_SVC_ORDER, "ORDER_EVENTS", BUS_IEV_ORDER_FULFILLED,
        "the Shopify fulfillment was created; live updates listen"),
    IEV(BUS_SVC_ORDER, "ORDER_EVENTS", BUS_IEV_ORDER_FAILED,
        "orchestration marked the order failed; live updates listen"),
    IEV(BUS_SVC_ORDER, "ORCHESTRATION_EVENTS", BUS_IEV_ORDER_PARTIALLY_COMPLETED,
        "some print jobs of the order completed and others failed (logged)"),
    IEV(BUS_SVC_ORDER, "ORCHESTRATION_EVENTS", BUS_IEV_ORDER_ALL_JOBS_FAILED,
        "every print job of the order failed (logged)"),
    IEV(BUS_SVC_ORDER, "PRINT_JOB_EVENTS", BUS_IEV_PRINTJOB_CREATED,
        "a print job was created for a line item; live updates listen"),
    IEV(BUS_SVC_ORDER, "PRINT_JOB_EVENTS", BUS_IEV_PRINTJOB_STATUS_CHANGED,
        "orchestration, live updates and web push listen"),
    IEV(BUS_SVC_ORDER, "PRINT_JOB_EVENTS", BUS_IEV_PRINTJOB_COMPLETED,
        "carries the full print job; orchestration and live updates listen"),
    IEV(BUS_SVC_ORDER, "PRINT_JOB_EVENTS", BUS_IEV_PRINTJOB_FAILED,
        "carries the full print job; orchestration, notifications and live updates listen"),
    IEV(BUS_SVC_ORDER, "PRINT_JOB_EVENTS", BUS_IEV_PRINTJOB_CANCELLED,
        "carries the full print job; orchestration and live updates listen"),
    IEV(BUS_SVC_ORDER, "PRINT_JOB_EVENTS", BUS_IEV_PRINTJOB_RETRY_REQUESTED,
        "an operator asked to retry a print job (event log)"),
    IEV(BUS_SVC_ORDER, "SHIPMENT_EVENTS", BUS_IEV_SHIPMENT_CREATED,
        "fulfillment creates the Shopify fulfillment; web push listens"),
    IEV(BUS_SVC_ORDER, "SHIPMENT_EVENTS", BUS_IEV_SHIPMENT_STATUS_CHANGED,
        "the order's shipment status is updated"),
    IEV(BUS_SVC_ORDER, "SHIPMENT_EVENTS", BUS_IEV_SHIPMENT_LABEL_READY,
        "reserved: labels are handled in the shipping service; web push listens"),
    IEV(BUS_SVC_ORDER, "SHIPMENT_EVENTS", BUS_IEV_SHIPMENT_FAILED,
        "reserved: shipment errors are handled in the shipping service (logged)"),
    IEV(BUS_SVC_ORDER, "SHIPMENT_EVENTS", BUS_IEV_SHIPMENT_UPDATED,
        "reserved: updates arrive as shipment.status-changed (logged)"),
    IEV(BUS_SVC_ORDER, "FULFILLMENT_EVENTS", BUS_IEV_FULFILLMENT_CREATED,
        "a Shopify fulfillment was created (logged)"),
    IEV(BUS_SVC_ORDER, "FULFILLMENT_EVENTS", BUS_IEV_FULFILLMENT_FAILED,
        "creating a Shopify fulfillment failed; notifications listen"),
    IEV(BUS_SVC_ORDER, "FULFILLMENT_EVENTS", BUS_IEV_FULFILLMENT_RETRYING,
        "a failed fulfillment is being retried (logged)"),
    IEV(BUS_SVC_ORDER, "GRIDFLOCK_EVENTS", BUS_IEV_GRIDFLOCK_MAPPING_READY,
        "orchestration continues the line item"),
    IEV(BUS_SVC_ORDER, "GRIDFLOCK_EVENTS", BUS_IEV_GRIDFLOCK_PIPELINE_FAILED,
        "the line item is marked failed"),
    IEV(BUS_SVC_ORDER, "INTEGRATION_EVENTS", BUS_IEV_INTEGRATION_SIMPLYPRINT_CHANGED,
        "the SimplyPrint client is re-initialised or disabled"),
    IEV(BUS_SVC_ORDER, "INTEGRATION_EVENTS", BUS_IEV_INTEGRATION_SENDCLOUD_CHANGED,
        "the Sendcloud client is re-initialised or disabled"),
    /* print service */
    IEV(BUS_SVC_PRINT, "PRINT_JOB_EVENTS", BUS_IEV_PRINTJOB_CREATED,
        "a print job was created (logged)"),
    IEV(BUS_SVC_PRINT, "PRINT_JOB_EVENTS", BUS_IEV_PRINTJOB_STATUS_CHANGED,
        "a print job changed status"),
    IEV(BUS_SVC_PRINT, "PRINT_JOB_EVENTS", BUS_IEV_PRINTJOB_COMPLETED, "a print job completed"),
    IEV(BUS_SVC_PRINT, "PRINT_JOB_EVENTS", BUS_IEV_PRINTJOB_FAILED,
        "a print job failed; notifications listen"),
    IEV(BUS_SVC_PRINT, "PRINT_JOB_EVENTS", BUS_IEV_PRINTJOB_CANCELLED, "a print job was cancelled"),
    IEV(BUS_SVC_PRINT, "PRINT_JOB_EVENTS", BUS_IEV_PRINTJOB_RETRY_REQUESTED,
        "a print job retry was requested"),
    IEV(BUS_SVC_PRINT, "SIMPLYPRINT_EVENTS", BUS_IEV_SIMPLYPRINT_JOB_STATUS_CHANGED,
        "SimplyPrint reported a job status (webhook, polling or reconciliation); print jobs "
        "update their status"),
    IEV(BUS_SVC_PRINT, "FULFILLMENT_EVENTS", BUS_IEV_FULFILLMENT_FAILED,
        "a fulfillment failed; notifications listen"),
    IEV(BUS_SVC_PRINT, "ORDER_EVENTS", BUS_IEV_ORDER_CREATED,
        "print jobs are prepared for the order"),
    IEV(BUS_SVC_PRINT, "ORDER_EVENTS", BUS_IEV_ORDER_CANCELLED,
        "the order's open print jobs are cancelled"),
    IEV(BUS_SVC_PRINT, "INVENTORY_EVENTS", BUS_IEV_STOCK_REPLENISHMENT_SCHEDULED,
        "the stock print job is created in SimplyPrint"),
    /* shipping service */
    IEV(BUS_SVC_SHIPPING, "SHIPMENT_EVENTS", BUS_IEV_SHIPMENT_CREATED,
        "a shipment was created; fulfillment listens"),
    IEV(BUS_SVC_SHIPPING, "SHIPMENT_EVENTS", BUS_IEV_SHIPMENT_LABEL_READY,
        "the shipping label is available"),
    IEV(BUS_SVC_SHIPPING, "SHIPMENT_EVENTS", BUS_IEV_SHIPMENT_FAILED,
        "creating a shipment failed (logged)"),
    IEV(BUS_SVC_SHIPPING, "SHIPMENT_EVENTS", BUS_IEV_SHIPMENT_UPDATED,
        "a shipment's status was updated (logged)"),
    IEV(BUS_SVC_SHIPPING, "SENDCLOUD_WEBHOOK_EVENTS", BUS_IEV_SENDCLOUD_SHIPMENT_STATUS_CHANGED,
        "Sendcloud reported a status change (webhook or reconciliation)"),
    IEV(BUS_SVC_SHIPPING, "ORCHESTRATION_EVENTS", BUS_IEV_ORCHESTRATION_ORDER_READY_FOR_FULFILLMENT,
        "the Sendcloud shipment is created"),
    IEV(BUS_SVC_SHIPPING, "ORDER_EVENTS", BUS_IEV_ORDER_CANCELLED,
        "the shipment is cancelled if not yet sent"),
    IEV(BUS_SVC_SHIPPING, "FULFILLMENT_EVENTS", BUS_IEV_FULFILLMENT_COMPLETED,
        "a fulfillment completed (logged)"),
    IEV(BUS_SVC_SHIPPING, "FULFILLMENT_EVENTS", BUS_IEV_FULFILLMENT_FAILED,
        "a fulfillment failed; notifications listen"),
    /* gridflock service */
    IEV(BUS_SVC_GRIDFLOCK, "GRIDFLOCK_EVENTS", BUS_IEV_GRIDFLOCK_MAPPING_READY,
        "the pipeline produced (or found) the product mapping"),
    IEV(BUS_SVC_GRIDFLOCK, "GRIDFLOCK_EVENTS", BUS_IEV_GRIDFLOCK_PIPELINE_FAILED,
        "a pipeline step failed"),
};
const size_t bus_internal_event_count = COUNT(bus_internal_events);

/* ---- lookups ------------------------------------------------------------------------- */

const bus_event_def *bus_catalog_find(const char *type)
{
    if (!type)
        return NULL;
    for (size_t i = 0; i < bus_catalog_count; i++)
        if (strcmp(bus_catalog[i].type, type) == 0)
            return &bus_catalog[i];
    return NULL;
}

const bus_event_def *bus_catalog_find_internal(const char *service, const char *internal_name)
{
    bus_service svc;
    if (!internal_name || bus_service_parse(service, &svc) != 0)
        return NULL;
    for (size_t i = 0; i < bus_catalog_count; i++) {
        const bus_event_def *d = &bus_catalog[i];
        if (d->publisher == svc && d->publisher_internal &&
            strcmp(d->publisher_internal, internal_name) == 0)
            return d;
    }
    return NULL;
}

size_t bus_event_subscriber_count(const bus_event_def *d)
{
    return d ? d->subscriber_count : 0;
}

bus_service bus_event_subscriber(const bus_event_def *d, size_t i)
{
    if (!d || i >= d->subscriber_count)
        return BUS_SERVICE_COUNT;
    return d->subscribers[i].service;
}

const char *bus_event_subscriber_internal_name(const bus_event_def *d, size_t i)
{
    if (!d || i >= d->subscriber_count)
        return NULL;
    return d->subscribers[i].internal_name ? d->subscribers[i].internal_name : d->type;
}

int bus_event_subscriber_index(const bus_event_def *d, bus_service service)
{
    for (size_t i = 0; d && i < d->subscriber_count; i++)
        if (d->subscribers[i].service == service)
            return (int)i;
    return -1;
}

bool bus_catalog_has_queue(const char *queue)
{
    char name[256]; /* event types and service names are short */
    for (size_t i = 0; queue && i < bus_catalog_count; i++) {
        const bus_event_def *d = &bus_catalog[i];
        for (size_t k = 0; k < bus_event_subscriber_count(d); k++)
            if (bus_queue_name(d->type, bus_event_subscriber(d, k), name, sizeof name) == 0 &&
                strcmp(name, queue) == 0)
                return true;
    }
    return false;
}

int bus_queue_name(const char *event_type, bus_service subscriber, char *out, size_t out_size)
{
    if (!event_type || !*event_type || strchr(event_type, '@') || (int)subscriber < 0 ||
        subscriber >= BUS_SERVICE_COUNT)
        return F3_EINVAL;
    if (!out || out_size == 0)
        return F3_ETOOBIG;
    int n = snprintf(out, out_size, "%s@%s", event_type, service_names[subscriber]);
    if (n < 0 || (size_t)n >= out_size) {
        out[0] = '\0';
        return F3_ETOOBIG;
    }
    return 0;
}

const bus_internal_event_def *bus_internal_event_find(bus_service service, const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < bus_internal_event_count; i++)
        if (bus_internal_events[i].service == service &&
            strcmp(bus_internal_events[i].name, name) == 0)
            return &bus_internal_events[i];
    return NULL;
}

/* ---- payload validation ------------------------------------------------------------- */

#define PATH_CAP 512

static int field_error(err *e, const bus_event_def *d, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int field_error(err *e, const bus_event_def *d, const char *path, const char *fmt, ...)
{
    buf problem;
    buf_init(&problem, ERR_MSG_MAX);
    va_list ap;
    va_start(ap, fmt);
    (void)buf_vprintf(&problem, fmt, ap);
    va_end(ap);
    err_set(e, F3_EINVAL, "%s: field '%s' %s", d->type, path, buf_cstr(&problem));
    buf_free(&problem);
    return F3_EINVAL;
}

/* "'a', 'b', 'c'" for an enum's message. */
static void choices_text(const char *const *choices, buf *out)
{
    for (size_t i = 0; choices && choices[i]; i++)
        (void)buf_printf(out, "%s'%s'", i ? ", " : "", choices[i]);
}

static int enum_error(err *e, const bus_event_def *d, const char *path, const bus_field *f,
                      const json_t *v)
{
    buf list;
    buf_init(&list, ERR_MSG_MAX);
    choices_text(f->choices, &list);
    int rc;
    if (json_is_string(v))
        rc = field_error(e, d, path, "must be one of %s, not '%.64s'", buf_cstr(&list),
                         json_string_value(v));
    else
        rc = field_error(e, d, path, "must be a string, one of %s", buf_cstr(&list));
    buf_free(&list);
    return rc;
}

static bool enum_has(const char *const *choices, const char *s)
{
    for (size_t i = 0; choices && choices[i]; i++)
        if (strcmp(choices[i], s) == 0)
            return true;
    return false;
}

static int check_fields(const bus_event_def *d, const bus_field *fields, size_t n,
                        const json_t *obj, const char *prefix, err *e);

static int check_array(const bus_event_def *d, const bus_field *f, const json_t *arr,
                       const char *path, err *e)
{
    size_t i;
    const json_t *item;
    json_array_foreach(arr, i, item)
    {
        buf ipath;
        buf_init(&ipath, PATH_CAP);
        (void)buf_printf(&ipath, "%s[%zu]", path, i);
        int rc = 0;
        if (!json_is_object(item))
            rc = field_error(e, d, buf_cstr(&ipath), "must be an object");
        else
            rc = check_fields(d, f->items, f->item_count, item, buf_cstr(&ipath), e);
        buf_free(&ipath);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Checks one present, non-null value against its field definition. */
static int check_value(const bus_event_def *d, const bus_field *f, const json_t *v,
                       const char *path, err *e)
{
    switch (f->type) {
    case BUS_FIELD_STRING:
        return json_is_string(v) ? 0 : field_error(e, d, path, "must be a string");
    case BUS_FIELD_INTEGER:
        return json_is_integer(v) ? 0 : field_error(e, d, path, "must be an integer");
    case BUS_FIELD_NUMBER:
        return json_is_number(v) ? 0 : field_error(e, d, path, "must be a number");
    case BUS_FIELD_BOOLEAN:
        return json_is_boolean(v) ? 0 : field_error(e, d, path, "must be a boolean");
    case BUS_FIELD_ENUM:
        if (json_is_string(v) && enum_has(f->choices, json_string_value(v)))
            return 0;
        return enum_error(e, d, path, f, v);
    case BUS_FIELD_ARRAY:
        if (!json_is_array(v))
            return field_error(e, d, path, "must be an array");
        return check_array(d, f, v, path, e);
    case BUS_FIELD_OBJECT:
        if (!json_is_object(v))
            return field_error(e, d, path, "must be an object");
        return check_fields(d, f->items, f->item_count, v, path, e);
    }
    return field_error(e, d, path, "has a type the catalog does not know");
}

static int check_fields(const bus_event_def *d, const bus_field *fields, size_t n,
                        const json_t *obj, const char *prefix, err *e)
{
    for (size_t i = 0; i < n; i++) {
        const bus_field *f = &fields[i];
        buf path;
        buf_init(&path, PATH_CAP);
        if (prefix)
            (void)buf_printf(&path, "%s.%s", prefix, f->name);
        else
            (void)buf_puts(&path, f->name);
        const json_t *v = json_object_get(obj, f->name);
        int rc = 0;
        if (!v) {
            if (f->required)
                rc = field_error(e, d, buf_cstr(&path), "is missing");
        } else if (json_is_null(v)) {
            if (!f->nullable)
                rc = field_error(e, d, buf_cstr(&path), "must not be null");
        } else {
            rc = check_value(d, f, v, buf_cstr(&path), e);
        }
        buf_free(&path);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int bus_catalog_validate_payload(const bus_event_def *d, const json_t *event, err *e)
{
    if (!d)
        return err_set(e, F3_EINVAL, "unknown event type");
    if (!json_is_object(event))
        return err_set(e, F3_EINVAL, "%s: the event must be a JSON object", d->type);
    return check_fields(d, d->fields, d->field_count, event, NULL, e);
}
