#pragma once

#include <QString>

// Entry point of the inspector GUI (QApplication lives inside).
namespace Inspector {
int run(int argc, char *argv[], const QString &defaultUrl, const QString &defaultMap);
}
