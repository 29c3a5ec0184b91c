/*
 * label.c - the simulator's shipping labels: a small PDF 1.4 document per parcel,
 * written object by object with the byte offsets of the cross-reference table counted as
 * it goes, so that any PDF reader opens it. It shows the carrier, the tracking number and
 * the recipient in Helvetica on one A6 page. Nothing here reads simulator state.
 */
#include "sim/sendcloud/sim_internal.h"

#include <stdio.h>
#include <string.h>

#define MAX_OBJECTS 6

/* Appends s as the inside of a PDF literal string: \ ( ) escaped, anything outside
 * printable ASCII shown as '?'. */
static int pdf_text(buf *b, const char *s)
{
    int rc = 0;
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p && rc == 0; p++) {
        if (*p == '\\' || *p == '(' || *p == ')')
            rc = buf_putc(b, '\\') || buf_putc(b, (char)*p);
        else
            rc = buf_putc(b, *p >= 32 && *p < 127 ? (char)*p : '?');
    }
    return rc;
}

static int content_stream(const char *carrier, const char *tracking_number,
                          const char *const *lines, buf *cs)
{
    int rc = buf_puts(cs, "BT\n/F1 16 Tf\n20 380 Td\n(") || pdf_text(cs, carrier) ||
             buf_puts(cs, ") Tj\n/F1 10 Tf\n0 -30 Td\n(Tracking: ") ||
             pdf_text(cs, tracking_number) || buf_puts(cs, ") Tj\n0 -30 Td\n(Ship to:) Tj\n");
    for (size_t i = 0; rc == 0 && lines && lines[i] && i < 8; i++)
        rc = buf_puts(cs, "0 -14 Td\n(") || pdf_text(cs, lines[i]) || buf_puts(cs, ") Tj\n");
    if (rc == 0)
        rc = buf_puts(cs, "/F1 8 Tf\n0 -40 Td\n(Simulated label - not valid for shipping) Tj\n"
                          "ET\n");
    return rc;
}

int sendcloud_sim_label_pdf(const char *carrier, const char *tracking_number,
                            const char *const *lines, buf *out)
{
    buf cs;
    buf_init(&cs, 64 * 1024);
    size_t offsets[MAX_OBJECTS] = {0};
    size_t start = out->len;
    int rc = content_stream(carrier, tracking_number, lines, &cs);
    /* The binary comment line tells transfer tools the file is not plain text. */
    rc = rc || buf_puts(out, "%PDF-1.4\n%\xE2\xE3\xCF\xD3\n");
    offsets[1] = out->len - start;
    rc = rc || buf_puts(out, "1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n");
    offsets[2] = out->len - start;
    rc = rc || buf_puts(out, "2 0 obj\n<< /Type /Pages /Kids [3 0 R] /Count 1 >>\nendobj\n");
    offsets[3] = out->len - start;
    rc = rc || buf_puts(out, "3 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 298 420] "
                             "/Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>\n"
                             "endobj\n");
    offsets[4] = out->len - start;
    rc = rc || buf_printf(out, "4 0 obj\n<< /Length %zu >>\nstream\n", cs.len) ||
         buf_append(out, cs.data ? cs.data : "", cs.len) || buf_puts(out, "\nendstream\nendobj\n");
    offsets[5] = out->len - start;
    rc = rc || buf_puts(out, "5 0 obj\n<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica "
                             "/Encoding /WinAnsiEncoding >>\nendobj\n");
    size_t xref = out->len - start;
    /* Each xref entry is exactly 20 bytes: 10-digit offset, 5-digit generation, flag, EOL. */
    rc = rc || buf_printf(out, "xref\n0 %d\n0000000000 65535 f \n", MAX_OBJECTS);
    for (int i = 1; rc == 0 && i < MAX_OBJECTS; i++)
        rc = buf_printf(out, "%010zu 00000 n \n", offsets[i]);
    rc = rc || buf_printf(out, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%zu\n%%%%EOF\n",
                          MAX_OBJECTS, xref);
    buf_free(&cs);
    return rc ? F3_ENOMEM : 0;
}
