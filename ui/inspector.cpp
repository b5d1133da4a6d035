#include "inspector.h"

#include "mainwindow.h"

#include <QApplication>
#include <QCommandLineParser>
#include <QIcon>
#include <QPixmap>
#include <QTimer>

#include <cstdio>

int Inspector::run(int argc, char *argv[], const QString &defaultUrl, const QString &defaultMap)
{
    // Under X11, QGuiApplication takes -name/--name (the window's resource
    // name) for itself and removes it: read ours before it does.
    QString nameArgument;
    for (int i = 1; i < argc; ++i) {
        const QByteArray arg(argv[i]);
        if ((arg == "--name" || arg == "-name") && i + 1 < argc)
            nameArgument = QString::fromLocal8Bit(argv[++i]);
        else if (arg.startsWith("--name="))
            nameArgument = QString::fromLocal8Bit(arg.mid(7));
    }
    QApplication app(argc, argv);
    QApplication::setOrganizationName(QStringLiteral("distmap"));
    QApplication::setApplicationName(QStringLiteral("distmap"));
    QApplication::setApplicationDisplayName(QStringLiteral("distmap inspector"));
    QApplication::setDesktopFileName(QStringLiteral("distmap")); // resources/distmap.desktop
    QApplication::setWindowIcon(QIcon(QStringLiteral(":/icons/distmap-256.png")));

    QCommandLineParser parser;
    parser.setApplicationDescription(QStringLiteral(
        "The distmap inspector: edit shared maps and watch the map network live. When nothing answers "
        "at the default relay address, the inspector hosts a relay there itself."));
    parser.addHelpOption();
    const QCommandLineOption urlOption(QStringLiteral("url"), QStringLiteral("Relay URL (default %1).").arg(defaultUrl),
                                       QStringLiteral("URL"), defaultUrl);
    const QCommandLineOption mapOption(QStringLiteral("map"),
                                       QStringLiteral("Map URI to open; repeat for several tabs (default: last session's, else %1).")
                                           .arg(defaultMap),
                                       QStringLiteral("URI"));
    const QCommandLineOption nameOption(QStringLiteral("name"), QStringLiteral("Display name other peers see."),
                                        QStringLiteral("NAME"));
    const QCommandLineOption noHostOption(QStringLiteral("no-host"),
                                          QStringLiteral("Never host a relay, even when none answers."));
    const QCommandLineOption freshOption(QStringLiteral("fresh"),
                                         QStringLiteral("Ignore and keep the remembered settings (recent URLs, layout)."));
    const QCommandLineOption screenshotOption(
        QStringLiteral("screenshot"),
        QStringLiteral("Save a PNG of the window to FILE after --screenshot-delay ms, then quit (for docs)."),
        QStringLiteral("FILE"));
    const QCommandLineOption delayOption(QStringLiteral("screenshot-delay"),
                                         QStringLiteral("Milliseconds before --screenshot is taken (default 4000)."),
                                         QStringLiteral("MS"), QStringLiteral("4000"));
    const QCommandLineOption noStoreOption(QStringLiteral("no-store"),
                                           QStringLiteral("Keep maps in memory only; by default each map is stored on disk."));
    parser.addOptions({urlOption, mapOption, nameOption, noHostOption, freshOption, screenshotOption, delayOption, noStoreOption});
    parser.process(app);

    MainWindow::Options options;
    options.url = parser.value(urlOption);
    options.maps = parser.values(mapOption);
    options.name = parser.isSet(nameOption) ? parser.value(nameOption) : nameArgument;
    options.useSettings = !parser.isSet(freshOption) && !parser.isSet(screenshotOption);
    options.useStore = !parser.isSet(noStoreOption);
    // Only the well-known default address is hosted: a typo in a custom URL
    // should show "reconnecting", not silently start a private relay.
    options.hostWhenMissing = options.url == defaultUrl && !parser.isSet(noHostOption);
    if (options.maps.isEmpty() && !options.useSettings)
        options.maps.append(defaultMap);

    MainWindow window(options);
    window.resize(1280, 800);
    window.show();

    if (parser.isSet(screenshotOption)) {
        const QString file = parser.value(screenshotOption);
        QTimer::singleShot(parser.value(delayOption).toInt(), &window, [&window, file] {
            const bool saved = window.grab().save(file);
            if (!saved)
                std::fprintf(stderr, "distmap: could not save %s\n", qPrintable(file));
            QApplication::exit(saved ? 0 : 1);
        });
    }
    return app.exec();
}
