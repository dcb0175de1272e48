/* The levels of the gateway's log lines (log.h). A header of its own so
 * that the refusal table names the level each refusal is logged at
 * without depending on the logger, which writes to stderr. */
#ifndef GW_LOG_LEVEL_H
#define GW_LOG_LEVEL_H

typedef enum gw_log_level {
    GW_LOG_DEBUG,
    GW_LOG_INFO,
    GW_LOG_WARN,
    GW_LOG_ERROR,
} gw_log_level;

#endif
