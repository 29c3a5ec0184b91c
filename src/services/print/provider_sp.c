/*
 * provider_sp.c - print_provider_simplyprint: the provider table over the SimplyPrint REST
 * client. Only forwarding; no retries, no business rules.
 */
#include "services/print/provider.h"

static void *sp_new(const sp_client_opts *o, err *e)
{
    return sp_client_new(o, e);
}

static void sp_free(void *client)
{
    sp_client_free(client);
}

static int sp_test(void *client, sp_call *call, err *e)
{
    return sp_account_test(client, call, e);
}

static int sp_add(void *client, const sp_queue_add *rq, int64_t *created_id, sp_call *call, err *e)
{
    return sp_queue_add_item(client, rq, created_id, call, e);
}

static int sp_get(void *client, int64_t id, sp_queue_item *out, sp_call *call, err *e)
{
    return sp_queue_get_item(client, id, out, call, e);
}

static int sp_delete(void *client, int64_t id, sp_call *call, err *e)
{
    return sp_queue_delete_item(client, id, call, e);
}

static int sp_queue(void *client, bool include_done, sp_queue_item **out, size_t *n, sp_call *call,
                    err *e)
{
    return sp_queue_list(client, include_done, out, n, call, e);
}

static int sp_list(void *client, const sp_jobs_query *q, sp_job **out, size_t *n, int *pages,
                   sp_call *call, err *e)
{
    return sp_jobs_list(client, q, out, n, pages, call, e);
}

static int sp_get_job(void *client, const char *uid, sp_job *out, sp_call *call, err *e)
{
    return sp_job_get(client, uid, out, call, e);
}

const print_provider print_provider_simplyprint = {
    .client_new = sp_new,
    .client_free = sp_free,
    .account_test = sp_test,
    .queue_add_item = sp_add,
    .queue_get_item = sp_get,
    .queue_delete_item = sp_delete,
    .queue_list = sp_queue,
    .jobs_list = sp_list,
    .job_get = sp_get_job,
};
