/*
 * farm.c - the simulated print farm: printers that take queue items in FIFO order,
 * one copy at a time (an item of amount N becomes N print jobs), and end each print
 * after print_ms as done, failed or cancelled (by chance or by a control call).
 *
 * A failed or cancelled copy is used up, not put back in the queue: deciding to
 * print it again is the caller's business (f3connect's print service), as with a
 * real farm whose operator does not revive items. An item leaves the queue when its
 * last copy has ended. Also the JSON views of items, jobs and printers shared by
 * the API and the control endpoints. Nothing here sends anything itself.
 */
#include "sim/simplyprint/sim_internal.h"

#include "core/clock.h"
#include "core/log.h"
#include "sim/common/wait.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

spsim_job *spsim_find_job(sp_sim *s, int64_t id)
{
    for (size_t i = 0; i < s->njobs; i++)
        if (s->jobs[i].id == id)
            return &s->jobs[i];
    return NULL;
}

spsim_item *spsim_find_item(sp_sim *s, int64_t id)
{
    for (size_t i = 0; i < s->nitems; i++)
        if (s->items[i].id == id)
            return &s->items[i];
    return NULL;
}

static spsim_printer *find_printer(sp_sim *s, int64_t id)
{
    for (size_t i = 0; i < s->nprinters; i++)
        if (s->printers[i].id == id)
            return &s->printers[i];
    return NULL;
}

const char *spsim_job_status_name(sp_job_state st)
{
    return st == SP_JOB_ONGOING ? "ongoing" : sp_job_state_name(st);
}

int spsim_job_percentage(const sp_sim *s, const spsim_job *j)
{
    if (j->state != SP_JOB_ONGOING)
        return j->end_percentage;
    int64_t span = j->due_ms - j->started_ms;
    if (span <= 0)
        return 99;
    (void)s;
    int64_t pct = (clock_mono_ms() - j->started_ms) * 100 / span;
    return pct < 0 ? 0 : pct > 99 ? 99 : (int)pct;
}

/* Forgets the oldest ended job when the history is full. Lock held. */
static void trim_jobs(sp_sim *s)
{
    if (s->njobs < SPSIM_JOBS_MAX)
        return;
    for (size_t i = 0; i < s->njobs; i++) {
        if (s->jobs[i].state == SP_JOB_ONGOING)
            continue;
        json_decref(s->jobs[i].custom_fields);
        memmove(&s->jobs[i], &s->jobs[i + 1], (s->njobs - i - 1) * sizeof *s->jobs);
        s->njobs--;
        return;
    }
}

/* Forgets the oldest done item when too many are kept. Lock held. */
static void trim_done_items(sp_sim *s)
{
    size_t done = 0, oldest = 0;
    for (size_t i = 0; i < s->nitems; i++)
        if (s->items[i].done_s && done++ == 0)
            oldest = i;
    if (done <= SPSIM_DONE_ITEMS_MAX)
        return;
    json_decref(s->items[oldest].custom_fields);
    memmove(&s->items[oldest], &s->items[oldest + 1], (s->nitems - oldest - 1) * sizeof *s->items);
    s->nitems--;
}

/* Printer p takes the next copy of the first queue item with copies left. Lock held. */
static void take_next(sp_sim *s, spsim_printer *p)
{
    spsim_item *it = NULL;
    for (size_t i = 0; i < s->nitems && !it; i++)
        if (!s->items[i].done_s && s->items[i].left > 0)
            it = &s->items[i];
    if (!it)
        return;
    trim_jobs(s);
    if (spsim_grow((void **)&s->jobs, &s->jobs_cap, s->njobs, sizeof *s->jobs))
        return;
    /* `it` stays valid: trimming and growing move jobs, never items. */
    spsim_job *j = &s->jobs[s->njobs++];
    memset(j, 0, sizeof *j);
    j->id = s->next_job_id++;
    uuid_v4(j->uid);
    j->printer_id = p->id;
    j->queue_item_id = it->id;
    snprintf(j->filename, sizeof j->filename, "%s", it->filename);
    j->state = SP_JOB_ONGOING;
    j->started_s = clock_now_ms() / 1000;
    j->started_ms = clock_mono_ms();
    j->due_ms = j->started_ms + s->print_ms;
    j->custom_fields = json_incref(it->custom_fields);
    it->left--;
    p->job_id = j->id;
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)j->id);
    log_info("sim print started", "jobId", id, "printer", p->name, "file", j->filename);
    spsim_deliver_job_event(s, "job.started", j);
}

void spsim_end_job(sp_sim *s, spsim_job *j, sp_job_state how, const char *reason)
{
    j->end_percentage = how == SP_JOB_DONE ? 100 : spsim_job_percentage(s, j);
    j->state = how;
    j->ended_s = clock_now_ms() / 1000;
    if (how == SP_JOB_FAILED || how == SP_JOB_CANCELLED)
        snprintf(j->reason, sizeof j->reason, "%s",
                 reason && *reason      ? reason
                 : how == SP_JOB_FAILED ? "Filament runout detected"
                                        : "Cancelled by operator");
    spsim_printer *p = find_printer(s, j->printer_id);
    if (p && p->job_id == j->id)
        p->job_id = 0;
    spsim_item *it = spsim_find_item(s, j->queue_item_id);
    if (it && how == SP_JOB_DONE)
        it->printed++;
    bool active = false;
    for (size_t i = 0; it && i < s->njobs && !active; i++)
        active = s->jobs[i].queue_item_id == it->id && s->jobs[i].state == SP_JOB_ONGOING;
    if (it && !it->done_s && it->left == 0 && !active) {
        it->done_s = j->ended_s;
        trim_done_items(s);
    }
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)j->id);
    log_info("sim print ended", "jobId", id, "state", sp_job_state_name(how));
    spsim_deliver_job_event(s,
                            how == SP_JOB_DONE     ? "job.done"
                            : how == SP_JOB_FAILED ? "job.failed"
                                                   : "job.cancelled",
                            j);
    pthread_cond_broadcast(&s->farm_wake);
    pthread_cond_broadcast(&s->idle);
}

/* Ends every print that is due and starts new ones; returns the earliest time
 * (clock_mono_ms) something will be due, or 0 for nothing. Lock held. */
static int64_t farm_tick(sp_sim *s)
{
    int64_t now = clock_mono_ms(), next = 0;
    for (size_t i = 0; i < s->nprinters; i++) {
        spsim_printer *p = &s->printers[i];
        spsim_job *j = p->job_id ? spsim_find_job(s, p->job_id) : NULL;
        if (j && j->state == SP_JOB_ONGOING && j->due_ms <= now) {
            double r = spsim_random(s);
            sp_job_state how = r < s->fail_rate                    ? SP_JOB_FAILED
                               : r < s->fail_rate + s->cancel_rate ? SP_JOB_CANCELLED
                                                                   : SP_JOB_DONE;
            spsim_end_job(s, j, how, NULL);
            j = NULL;
        } else if (j && j->state != SP_JOB_ONGOING) {
            p->job_id = 0; /* ended elsewhere */
            j = NULL;
        }
        if (!p->job_id && !p->paused)
            take_next(s, p);
        j = p->job_id ? spsim_find_job(s, p->job_id) : NULL;
        if (j && (next == 0 || j->due_ms < next))
            next = j->due_ms;
    }
    return next;
}

static void wait_until(sp_sim *s, int64_t due_ms)
{
    int64_t wait = due_ms ? due_ms - clock_mono_ms() : 1000;
    if (wait > 1000)
        wait = 1000; /* settings change; look again now and then */
    sim_cond_wait_ms(&s->farm_wake, &s->lock, wait);
}

void *spsim_farm_worker(void *arg)
{
    sp_sim *s = arg;
    pthread_mutex_lock(&s->lock);
    while (!s->stopping) {
        int64_t next = farm_tick(s);
        pthread_cond_broadcast(&s->idle);
        if (next && next <= clock_mono_ms())
            continue;
        wait_until(s, next);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* ---- JSON views ------------------------------------------------------------------------- */

json_t *spsim_item_json(const spsim_item *it)
{
    json_t *o =
        json_pack("{s:I,s:s,s:I,s:i,s:i,s:i,s:I}", "id", (json_int_t)it->id, "filename",
                  it->filename, "group", (json_int_t)it->group, "amount", it->amount, "left",
                  it->left, "printed", it->printed, "created_at", (json_int_t)it->created_s);
    if (!o)
        return NULL;
    json_object_set_new(o, "filesystem_id",
                        it->filesystem_id[0] ? json_string(it->filesystem_id) : json_null());
    if (it->file_id[0])
        json_object_set_new(o, "file_id", json_string(it->file_id));
    json_object_set_new(o, "customFields",
                        it->custom_fields ? json_incref(it->custom_fields) : json_array());
    if (it->done_s)
        json_object_set_new(o, "done", json_integer(it->done_s));
    return o;
}

static const char *printer_name_of(const sp_sim *s, int64_t id)
{
    for (size_t i = 0; i < s->nprinters; i++)
        if (s->printers[i].id == id)
            return s->printers[i].name;
    return "";
}

json_t *spsim_job_row_json(const sp_sim *s, const spsim_job *j)
{
    json_t *o = json_pack(
        "{s:I,s:s,s:s,s:s,s:I,s:{s:I,s:s},s:i,s:{s:I,s:n,s:n}}", "id", (json_int_t)j->id, "uid",
        j->uid, "status", spsim_job_status_name(j->state), "filename", j->filename, "startDate",
        (json_int_t)j->started_s, "printer", "id", (json_int_t)j->printer_id, "name",
        printer_name_of(s, j->printer_id), "currentPercentage", spsim_job_percentage(s, j),
        "queueItem", "id", (json_int_t)j->queue_item_id, "user", "queueNum");
    if (!o)
        return NULL;
    json_object_set_new(o, "endDate", j->ended_s ? json_integer(j->ended_s) : json_null());
    json_object_set_new(o, "cancelReasonType",
                        j->state == SP_JOB_CANCELLED ? json_string("other") : json_null());
    json_object_set_new(o, "customFields",
                        j->custom_fields ? json_incref(j->custom_fields) : json_array());
    return o;
}

json_t *spsim_job_detail_json(const sp_sim *s, const spsim_job *j)
{
    json_t *o = json_pack("{s:I,s:s,s:s,s:s,s:i,s:I,s:{s:I,s:s},s:{s:I}}", "id", (json_int_t)j->id,
                          "uid", j->uid, "state", spsim_job_status_name(j->state), "file",
                          j->filename, "percentage", spsim_job_percentage(s, j), "started",
                          (json_int_t)j->started_s, "printer", "id", (json_int_t)j->printer_id,
                          "name", printer_name_of(s, j->printer_id), "queueItem", "id",
                          (json_int_t)j->queue_item_id);
    if (!o)
        return NULL;
    json_object_set_new(o, "ended", j->ended_s ? json_integer(j->ended_s) : json_null());
    json_object_set_new(o, "failedReason",
                        j->state == SP_JOB_FAILED ? json_string(j->reason) : json_null());
    json_object_set_new(
        o, "cancelInfo",
        j->state == SP_JOB_CANCELLED
            ? json_pack("{s:s,s:n,s:s}", "reason", j->reason, "comment", "by", "simulator")
            : json_null());
    return o;
}

json_t *spsim_printer_json(const sp_sim *s, const spsim_printer *p)
{
    const spsim_job *j = NULL;
    for (size_t i = 0; p->job_id && i < s->njobs && !j; i++)
        if (s->jobs[i].id == p->job_id)
            j = &s->jobs[i];
    json_t *job =
        j ? json_pack("{s:I,s:s,s:s,s:s,s:i}", "id", (json_int_t)j->id, "uid", j->uid, "state",
                      "printing", "file", j->filename, "percentage", spsim_job_percentage(s, j))
          : json_null();
    return json_pack("{s:I,s:{s:s,s:s,s:b,s:n,s:b,s:{s:s}},s:o}", "id", (json_int_t)p->id,
                     "printer", "name", p->name, "state", j ? "printing" : "operational", "online",
                     1, "group", "outOfOrder", p->paused, "model", "name", "Original Prusa MK4",
                     "job", job);
}
