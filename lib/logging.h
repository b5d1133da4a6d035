#pragma once

#include <QLoggingCategory>

Q_DECLARE_LOGGING_CATEGORY(lcNet)   // distmap.net: connection and sync
Q_DECLARE_LOGGING_CATEGORY(lcStore) // distmap.store: local persistence
