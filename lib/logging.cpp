#include "logging.h"

Q_LOGGING_CATEGORY(lcNet, "distmap.net", QtWarningMsg)
Q_LOGGING_CATEGORY(lcStore, "distmap.store", QtWarningMsg)
Q_LOGGING_CATEGORY(lcSync, "distmap.sync", QtWarningMsg)
