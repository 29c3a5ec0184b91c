/*
 * sandbox_demo.c - the sandbox's demo catalog and its demo orders (see sandbox.h).
 *
 * The catalog is a small print shop: single-file products, an assembly of two parts, a
 * set printed four times per unit, and SKUs nobody has mapped yet. Orders are drawn
 * from it with a seeded generator, so a run can be repeated. Nothing here talks to the
 * network or the database.
 */
#include "app/sandbox.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct demo_product {
    const char *sku;
    const char *title;
    const char *price;
    const char *mapping; /* NULL: not mapped */
} demo_product;

static const demo_product catalog[] = {
    {"F3-BENCHY-PLA", "3DBenchy, PLA", "9.90",
     "{\"sku\":\"F3-BENCHY-PLA\",\"name\":\"3DBenchy (PLA)\",\"files\":[{\"simplyPrintFileId\":"
     "\"5f0c3b1d9a7e4c2b8d6f1a3e5c7b9d0f\",\"fileName\":\"benchy_0.2mm_PLA.gcode\"}]}"},
    {"F3-DRAGON-PETG", "Articulated dragon, PETG", "24.50",
     "{\"sku\":\"F3-DRAGON-PETG\",\"name\":\"Articulated dragon (PETG)\",\"files\":[{"
     "\"simplyPrintFileId\":\"a1b2c3d4e5f60718293a4b5c6d7e8f90\",\"fileName\":"
     "\"dragon_0.2mm_PETG.gcode\"}]}"},
    {"F3-LAMP-KIT", "Desk lamp kit", "39.00",
     "{\"sku\":\"F3-LAMP-KIT\",\"name\":\"Desk lamp kit\",\"isAssembly\":true,\"files\":["
     "{\"simplyPrintFileId\":\"0d9c8b7a6f5e4d3c2b1a09f8e7d6c5b4\",\"fileName\":"
     "\"lamp_base.gcode\",\"partName\":\"Base\"},{\"simplyPrintFileId\":"
     "\"1e2d3c4b5a6f7e8d9c0b1a2f3e4d5c6b\",\"fileName\":\"lamp_shade.gcode\",\"partName\":"
     "\"Shade\"}]}"},
    {"F3-COASTER-SET", "Coaster set of four", "14.00",
     "{\"sku\":\"F3-COASTER-SET\",\"name\":\"Coaster set (4)\",\"files\":[{\"simplyPrintFileId\":"
     "\"9a8b7c6d5e4f30211a2b3c4d5e6f7081\",\"fileName\":\"coaster.gcode\",\"copies\":4}]}"},
    {"F3-PROTO-XL", "Custom prototype XL", "120.00", NULL},
    {"F3-ENGRAVED-SIGN", "Engraved name sign", "19.00", NULL},
};

#define CATALOG_N (sizeof catalog / sizeof catalog[0])

static const char *const first_names[] = {"Ada", "Linus", "Grace", "Ken", "Margaret", "Dennis"};
static const char *const last_names[] = {"Peeters", "Janssens", "Maes", "Jacobs", "Willems"};
static const char *const cities[][3] = {
    {"Antwerpen", "2000", "BE"}, {"Gent", "9000", "BE"},  {"Utrecht", "3511", "NL"},
    {"Lille", "59000", "FR"},    {"Köln", "50667", "DE"},
};

size_t sandbox_catalog_size(void)
{
    return CATALOG_N;
}

const char *sandbox_catalog_sku(size_t i)
{
    return i < CATALOG_N ? catalog[i].sku : NULL;
}

const char *sandbox_catalog_mapping(size_t i)
{
    return i < CATALOG_N ? catalog[i].mapping : NULL;
}

double sandbox_random(uint64_t *rng)
{
    uint64_t x = *rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *rng = x;
    return (double)((x * 0x2545F4914F6CDD1DULL) >> 11) / (double)(1ULL << 53);
}

static size_t pick(uint64_t *rng, size_t n)
{
    size_t i = (size_t)(sandbox_random(rng) * (double)n);
    return i < n ? i : n - 1;
}

/* A product of the wanted kind: mapped or not. */
static const demo_product *pick_product(uint64_t *rng, bool mapped)
{
    for (;;) {
        const demo_product *p = &catalog[pick(rng, CATALOG_N)];
        if ((p->mapping != NULL) == mapped)
            return p;
    }
}

static json_t *line_items(const sandbox_mix *mix, uint64_t *rng, bool mapped)
{
    json_t *items = json_array();
    int n = 1 + (int)pick(rng, (size_t)(mix->max_items > 0 ? mix->max_items : 1));
    for (int i = 0; items && i < n; i++) {
        const demo_product *p = pick_product(rng, mapped);
        int q = 1 + (int)pick(rng, (size_t)(mix->max_quantity > 0 ? mix->max_quantity : 1));
        json_t *li = json_pack("{s:s, s:s, s:i, s:s, s:b}", "title", p->title, "sku", p->sku,
                               "quantity", q, "price", p->price, "requires_shipping", 1);
        if (!li || json_array_append_new(items, li)) {
            json_decref(items);
            return NULL;
        }
    }
    return items;
}

static json_t *address(uint64_t *rng, const char *first, const char *last)
{
    const char *const *city = cities[pick(rng, sizeof cities / sizeof cities[0])];
    char street[64];
    snprintf(street, sizeof street, "Printerstraat %d", 1 + (int)pick(rng, 180));
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "first_name", first, "last_name",
                     last, "name", "", "address1", street, "city", city[0], "zip", city[1],
                     "country_code", city[2], "phone", "+32 3 123 45 67");
}

int sandbox_order_body(const sandbox_mix *mix, const sandbox_delivery *how, uint64_t *rng,
                       buf *body, sandbox_intent *intent)
{
    double draw = sandbox_random(rng);
    *intent = draw < mix->unmapped_rate                      ? SANDBOX_UNMAPPED
              : draw < mix->unmapped_rate + mix->cancel_rate ? SANDBOX_CANCEL
                                                             : SANDBOX_FULFIL;
    const char *first = first_names[pick(rng, sizeof first_names / sizeof first_names[0])];
    const char *last = last_names[pick(rng, sizeof last_names / sizeof last_names[0])];
    char email[96], name[96];
    snprintf(email, sizeof email, "%s.%s@example.com", first, last);
    snprintf(name, sizeof name, "%s %s", first, last);
    json_t *ship = address(rng, first, last);
    if (ship)
        json_object_set_new(ship, "name", json_string(name));
    json_t *items = line_items(mix, rng, *intent != SANDBOX_UNMAPPED);
    if (!ship || !items) {
        json_decref(ship);
        json_decref(items);
        return F3_ENOMEM;
    }
    /* "o" hands both references to the new order, also when packing fails. */
    json_t *order =
        json_pack("{s:{s:s, s:s, s:s, s:{s:s, s:s, s:s}, s:o, s:o}, s:i, s:b}", "order", "email",
                  email, "currency", "EUR", "financial_status", "paid", "customer", "first_name",
                  first, "last_name", last, "email", email, "shipping_address", ship, "line_items",
                  items, "duplicates", how->duplicates, "deliver", how->deliver);
    if (!order)
        return F3_ENOMEM;
    char *text = json_dumps(order, JSON_COMPACT);
    json_decref(order);
    int rc = text && buf_puts(body, text) == 0 ? 0 : F3_ENOMEM;
    free(text);
    return rc;
}
