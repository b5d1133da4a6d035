#pragma once

#include <QLoggingCategory>

Q_DECLARE_LOGGING_CATEGORY(lcNet)   // distmap.net: the connection to a relay
Q_DECLARE_LOGGING_CATEGORY(lcStore) // distmap.store: local persistence
Q_DECLARE_LOGGING_CATEGORY(lcSync)  // distmap.sync: sync rounds of a map
