#include "inspector.h"

#include <QApplication>
#include <QLabel>

int Inspector::run(int argc, char *argv[], const QString &defaultUrl, const QString &defaultMap)
{
    QApplication app(argc, argv);
    QLabel label(QStringLiteral("distmap inspector: %1 %2").arg(defaultUrl, defaultMap));
    label.show();
    return app.exec();
}
