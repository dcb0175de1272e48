/* Drafts of the CRA Art. 14 reports from an entry of the register, as
 * Markdown or JSON, for an operator to check, complete and submit by hand
 * on the single reporting platform (Art. 16). Each report lists the
 * information the article asks for; what the register does not hold yet
 * is marked as to be completed. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "cmds.h"
#include "incident_cli.h"

#define PRODUCT_NAME                                                                               \
    "IoT Telemetry: gateway (iotgw), administration tool (iotctl) and sensor firmware "            \
    "(iot-firmware-esp32)"
#define MAX_FIELDS  16
#define TO_COMPLETE "[to be completed]"

typedef struct draft_field {
    const char *key;   /* JSON key */
    const char *label; /* Markdown heading */
    const char *value; /* "" when the register does not hold it */
} draft_field;

typedef struct draft {
    const char *title;
    const char *basis; /* the article that asks for it */
    draft_field f[MAX_FIELDS];
    int n;
    char aware[32], fixed[32], deadline[32], product[160];
} draft;

static void add(draft *d, const char *key, const char *label, const char *value)
{
    if (d->n < MAX_FIELDS)
        d->f[d->n++] = (draft_field){key, label, value != NULL ? value : ""};
}

static bool is_vuln(const iot_incident *inc)
{
    return inc->kind == IOT_INCIDENT_VULNERABILITY;
}

static const char *malicious_text(const iot_incident *inc)
{
    if (strcmp(inc->malicious, "yes") == 0)
        return "yes: suspected of being caused by unlawful or malicious acts";
    if (strcmp(inc->malicious, "no") == 0)
        return "no: not suspected of being caused by unlawful or malicious acts";
    return "";
}

/* What every report names: the entry and the product. */
static void add_common(draft *d, const iot_incident *inc)
{
    add(d, "product", "Product with digital elements", d->product);
    add(d, "title", is_vuln(inc) ? "Vulnerability" : "Incident", inc->title);
    add(d, "identifiers", "Identifiers (CVE or other)", inc->cve);
    add(d, "aware_at", "Manufacturer became aware", d->aware);
    add(d, "affected_versions", "Affected versions", inc->versions);
}

static void early_warning(draft *d, const iot_incident *inc)
{
    d->title = "Early warning";
    d->basis = is_vuln(inc) ? "Regulation (EU) 2024/2847, Art. 14(2)(a)"
                            : "Regulation (EU) 2024/2847, Art. 14(4)(a)";
    add_common(d, inc);
    if (is_vuln(inc))
        add(d, "actively_exploited", "Actively exploited", inc->reportable ? "yes" : "no");
    else
        add(d, "unlawful_or_malicious", "Suspected unlawful or malicious acts",
            malicious_text(inc));
    add(d, "member_states", "Member States where the product is made available / affected",
        inc->member_states);
}

static void notification(draft *d, const iot_incident *inc)
{
    d->title = is_vuln(inc) ? "Vulnerability notification" : "Incident notification";
    d->basis = is_vuln(inc) ? "Regulation (EU) 2024/2847, Art. 14(2)(b)"
                            : "Regulation (EU) 2024/2847, Art. 14(4)(b)";
    add_common(d, inc);
    add(d, "affected_devices", "Affected devices", inc->devices);
    add(d, "nature",
        is_vuln(inc) ? "General nature of the exploit and of the vulnerability"
                     : "Nature of the incident and initial assessment",
        inc->description);
    add(d, "severity", "Severity", inc->severity);
    if (!is_vuln(inc))
        add(d, "unlawful_or_malicious", "Suspected unlawful or malicious acts",
            malicious_text(inc));
    add(d, "corrective_measures", "Corrective or mitigating measures taken", inc->corrective);
    add(d, "user_measures", "Corrective or mitigating measures users can take", inc->user_measures);
    add(d, "sensitivity", "How sensitive the notified information is", inc->sensitivity);
}

static void final_report(draft *d, const iot_incident *inc)
{
    d->title = "Final report";
    d->basis = is_vuln(inc) ? "Regulation (EU) 2024/2847, Art. 14(2)(c)"
                            : "Regulation (EU) 2024/2847, Art. 14(4)(c)";
    add_common(d, inc);
    add(d, "affected_devices", "Affected devices", inc->devices);
    add(d, "description", "Description, including severity and impact", inc->description);
    add(d, "severity", "Severity", inc->severity);
    if (is_vuln(inc)) {
        add(d, "malicious_actor", "Malicious actor that exploited it, where available", inc->actor);
        add(d, "measure_available", "Security update or other corrective measure available since",
            d->fixed);
        add(d, "corrective_measures", "Security update or other corrective measures made available",
            inc->corrective);
    } else {
        add(d, "root_cause", "Type of threat or root cause that likely triggered it",
            inc->root_cause);
        add(d, "corrective_measures", "Applied and ongoing mitigation measures", inc->corrective);
    }
}

static void user_notice(draft *d, const iot_incident *inc)
{
    d->title = "Information to users";
    d->basis = "Regulation (EU) 2024/2847, Art. 14(8)";
    add(d, "product", "Product", d->product);
    add(d, "title", is_vuln(inc) ? "Vulnerability" : "Incident", inc->title);
    add(d, "identifiers", "Identifiers (CVE or other)", inc->cve);
    add(d, "affected_versions", "Affected versions", inc->versions);
    add(d, "description", "What happened and what it means for you", inc->description);
    add(d, "severity", "Severity", inc->severity);
    add(d, "user_measures", "Risk mitigation and corrective measures you can take",
        inc->user_measures);
    add(d, "corrective_measures", "What the manufacturer has done", inc->corrective);
    add(d, "measure_available", "Security update available since", d->fixed);
}

static void build(draft *d, const iot_incident *inc, iot_report_type type)
{
    memset(d, 0, sizeof(*d));
    if (inc->aware_at != 0)
        cli_format_time(inc->aware_at, d->aware, sizeof(d->aware));
    if (inc->fixed_at != 0)
        cli_format_time(inc->fixed_at, d->fixed, sizeof(d->fixed));
    int64_t due = 0;
    if (iot_incident_deadline(inc, type, &due))
        cli_format_time(due, d->deadline, sizeof(d->deadline));
    snprintf(d->product, sizeof(d->product), "%s, release %s", PRODUCT_NAME, IOT_VERSION);
    if (type == IOT_REPORT_EARLY_WARNING)
        early_warning(d, inc);
    else if (type == IOT_REPORT_NOTIFICATION)
        notification(d, inc);
    else if (type == IOT_REPORT_FINAL)
        final_report(d, inc);
    else
        user_notice(d, inc);
}

static int print_markdown(const draft *d, const iot_incident *inc, iot_report_type type)
{
    printf("# %s: %s %lld\n\n", d->title, iot_incident_kind_name(inc->kind), (long long)inc->id);
    printf("Legal basis: %s. To be submitted through the single reporting platform (Art. 16)%s.\n",
           d->basis, type == IOT_REPORT_USER_NOTICE ? "; to the users of the product" : "");
    if (d->deadline[0] != '\0')
        printf("Deadline: %s.\n", d->deadline);
    else if (type == IOT_REPORT_USER_NOTICE)
        printf("Deadline: in a timely manner after becoming aware (Art. 14(8)).\n");
    int missing = 0;
    for (int i = 0; i < d->n; i++) {
        const char *v = d->f[i].value;
        missing += v[0] == '\0';
        printf("\n## %s\n\n%s\n", d->f[i].label, v[0] != '\0' ? v : TO_COMPLETE);
    }
    if (missing > 0)
        printf("\n%d field%s marked %s: complete them before submitting.\n", missing,
               missing == 1 ? " is" : "s are", TO_COMPLETE);
    return CLI_EXIT_OK;
}

static int print_json(const draft *d, const iot_incident *inc, iot_report_type type)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *fields = cJSON_CreateObject();
    cJSON *missing = cJSON_CreateArray();
    if (o == NULL || fields == NULL || missing == NULL) {
        cJSON_Delete(o);
        cJSON_Delete(fields);
        cJSON_Delete(missing);
        return cmd_print_json(NULL);
    }
    cJSON_AddStringToObject(o, "report", iot_report_type_name(type));
    cJSON_AddStringToObject(o, "title", d->title);
    cJSON_AddStringToObject(o, "legal_basis", d->basis);
    cJSON_AddNumberToObject(o, "incident", (double)inc->id);
    cJSON_AddStringToObject(o, "kind", iot_incident_kind_name(inc->kind));
    if (d->deadline[0] != '\0')
        cJSON_AddStringToObject(o, "deadline", d->deadline);
    else
        cJSON_AddNullToObject(o, "deadline");
    for (int i = 0; i < d->n; i++) {
        if (d->f[i].value[0] == '\0') {
            cJSON_AddNullToObject(fields, d->f[i].key);
            cJSON_AddItemToArray(missing, cJSON_CreateString(d->f[i].key));
        } else {
            cJSON_AddStringToObject(fields, d->f[i].key, d->f[i].value);
        }
    }
    cJSON_AddItemToObject(o, "fields", fields);
    cJSON_AddItemToObject(o, "missing", missing);
    int rc = cmd_print_json(o);
    cJSON_Delete(o);
    return rc;
}

int incident_report_print(const iot_incident *inc, iot_report_type type, int64_t now, bool json)
{
    (void)now;
    draft d;
    build(&d, inc, type);
    return json ? print_json(&d, inc, type) : print_markdown(&d, inc, type);
}

static void add_time(cJSON *o, const char *key, int64_t t)
{
    cmd_json_time(o, key, t);
}

static cJSON *reports_json(const iot_incident *inc, int64_t now)
{
    cJSON *a = cJSON_CreateArray();
    for (int r = 0; a != NULL && r < IOT_REPORT_COUNT; r++) {
        cJSON *o = cJSON_CreateObject();
        if (o == NULL)
            break;
        int64_t due = 0;
        cJSON_AddStringToObject(o, "type", iot_report_type_name((iot_report_type)r));
        add_time(o, "deadline", iot_incident_deadline(inc, (iot_report_type)r, &due) ? due : 0);
        cJSON_AddStringToObject(
            o, "status",
            iot_report_status_name(iot_incident_report_status(inc, (iot_report_type)r, now)));
        add_time(o, "submitted", inc->submitted[r]);
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

cJSON *incident_json(const iot_incident *inc, int64_t now)
{
    cJSON *o = cJSON_CreateObject();
    if (o == NULL)
        return NULL;
    cJSON_AddNumberToObject(o, "id", (double)inc->id);
    cJSON_AddStringToObject(o, "kind", iot_incident_kind_name(inc->kind));
    cJSON_AddStringToObject(o, "state", iot_incident_state_name(inc->state));
    cJSON_AddBoolToObject(o, "reportable", inc->reportable);
    cJSON_AddStringToObject(o, "severity", inc->severity);
    cJSON_AddStringToObject(o, "malicious", inc->malicious);
    const struct {
        const char *key, *value;
    } texts[] = {{"title", inc->title},
                 {"description", inc->description},
                 {"devices", inc->devices},
                 {"versions", inc->versions},
                 {"member_states", inc->member_states},
                 {"corrective", inc->corrective},
                 {"user_measures", inc->user_measures},
                 {"actor", inc->actor},
                 {"root_cause", inc->root_cause},
                 {"sensitivity", inc->sensitivity},
                 {"cve", inc->cve},
                 {"notes", inc->notes}};
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
        cJSON_AddStringToObject(o, texts[i].key, texts[i].value);
    add_time(o, "aware_at", inc->aware_at);
    add_time(o, "fixed_at", inc->fixed_at);
    add_time(o, "closed_at", inc->closed_at);
    add_time(o, "created", inc->created);
    cJSON_AddNumberToObject(o, "overdue", iot_incident_overdue(inc, now));
    cJSON_AddItemToObject(o, "reports", reports_json(inc, now));
    return o;
}
