#pragma once

#include <QProcess>
#include <QString>
#include <QStringList>
#include <QUrl>

// The relay under test: `distmap relay` started by us as a child process.
// Its CPU time and memory come from /proc/<pid>.
class RelayProcess
{
public:
    RelayProcess() = default;
    Q_DISABLE_COPY(RelayProcess)
    ~RelayProcess();

    // Starts `binary relay` on a free port with limits no benchmark reaches,
    // plus `extra` arguments; false if it did not say where it listens.
    bool start(const QString &binary, const QStringList &extra);
    void stop();

    double cpuSeconds() const; // user + system time so far
    static double cpuSecondsOf(qint64 pid); // the same, of any process of ours
    double rssMb() const;
    double peakMb() const;

    QUrl url;
    qint64 pid = 0;

private:
    QProcess m_process;
};
