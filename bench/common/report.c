#include "report.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

int bench_json_latency(cJSON *obj, const char *key, const bench_hist *h)
{
    bench_percentiles p = bench_hist_percentiles_us(h);
    cJSON *l = cJSON_AddObjectToObject(obj, key);
    if (l == NULL)
        return -1;
    int ok = cJSON_AddNumberToObject(l, "count", (double)h->count) != NULL &&
             cJSON_AddNumberToObject(l, "p50_us", p.p50) != NULL &&
             cJSON_AddNumberToObject(l, "p90_us", p.p90) != NULL &&
             cJSON_AddNumberToObject(l, "p99_us", p.p99) != NULL &&
             cJSON_AddNumberToObject(l, "p999_us", p.p999) != NULL &&
             cJSON_AddNumberToObject(l, "max_us", p.max) != NULL;
    return ok ? 0 : -1;
}

void bench_text_latency(char *buf, size_t size, const bench_hist *h)
{
    bench_percentiles p = bench_hist_percentiles_us(h);
    snprintf(buf, size,
             "p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f ms (%" PRIu64 " samples)",
             p.p50 / 1e3, p.p90 / 1e3, p.p99 / 1e3, p.p999 / 1e3, p.max / 1e3, h->count);
}

int bench_json_print(cJSON *obj)
{
    char *text = obj ? cJSON_PrintUnformatted(obj) : NULL;
    int rc = -1;
    if (text != NULL && printf("%s\n", text) > 0 && fflush(stdout) == 0)
        rc = 0;
    cJSON_free(text);
    cJSON_Delete(obj);
    return rc;
}
