/* What the incident commands share: an entry as JSON, and the drafts of
 * the CRA Art. 14 reports. */
#ifndef IOTCTL_INCIDENT_CLI_H
#define IOTCTL_INCIDENT_CLI_H

#include <stdint.h>

#include "iot/incident.h"

struct cJSON;

/* The entry as a JSON object with its reports' deadlines and states at
 * `now`; NULL when out of memory. */
struct cJSON *incident_json(const iot_incident *inc, int64_t now);

/* Prints the draft of one report for the entry: Markdown, or JSON with
 * `json`. Fields the regulation asks for that the register does not hold
 * yet are marked as to be completed (and listed under "missing" in JSON).
 * Returns a CLI exit status. */
int incident_report_print(const iot_incident *inc, iot_report_type type, int64_t now, bool json);

#endif
