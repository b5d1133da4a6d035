#pragma once

#include "bench.h"

#include <QList>
#include <QString>

// The tables on stdout, as docs/BENCHMARKS.md shows them.
void printTable(const QList<Row> &rows, double idleRss);
// Every row, with its parameters and figures, as one JSON document.
void writeJson(const QString &path, const QList<Row> &rows, double idleRss);
