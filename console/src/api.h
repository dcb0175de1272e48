/* The console's routes: the login page and its assets (the only things
 * served without a session), the other pages, the JSON API under /api/v1
 * and the live stream (docs/console.md, API). */
#ifndef IC_API_H
#define IC_API_H

#include "server.h"

/* Answers the request now whole in c->reader.req. */
void ic_api_handle(ic_conn *c);

#endif
