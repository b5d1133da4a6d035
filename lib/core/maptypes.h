#pragma once

#include <QByteArray>
#include <QJsonObject>
#include <QString>
#include <QtGlobal>

// The plain value types that distmap's public API hands out: a change, a
// delta seen on the wire, a peer, the relay's error codes. QtCore only and
// no functions to link, so this is the one header of lib/core that is
// installed with the library; Replica, MapState and Wire use these types
// under their old names (Replica::Change, MapState::Outcome, ...).
namespace distmap {

// Where a change came from.
enum class Source { Local, Delta, Sync, Repair, Store };

// What applying a write did.
enum class Outcome {
    Applied,    // the write is now the key's current write
    Superseded, // a newer write to the key was already here
    Duplicate,  // this very write was already here
};

// One applied change to one key.
struct Change
{
    QString key;
    bool deleted = false;
    QByteArray value;    // JSON text of the new value (empty when deleted)
    QByteArray oldValue; // JSON text of the replaced value (empty if none)
    bool hadOldValue = false;
    quint64 hlc = 0;
    quint64 writer = 0; // peer id of the writer; this peer's id for local writes
    quint64 from = 0;   // peer the change came from (0 = local or store)
    Source source = Source::Local;
};

// One delta seen on the wire, in or out, with what applying it did.
// For sync chunks, key is empty and count says how many entries it held.
struct DeltaEvent
{
    enum Direction { Incoming, Outgoing };
    enum Operation { Set, Delete, SyncChunk };
    Direction direction = Incoming;
    Operation operation = Set;
    quint64 peer = 0; // origin (incoming) or this peer (outgoing)
    QString key;
    QByteArray value;
    quint64 hlc = 0;
    quint64 writer = 0;
    Outcome outcome = Outcome::Applied;
    int count = 1;
    Source source = Source::Delta;
};

// One write of one key: a value (JSON text) or a delete.
struct Write
{
    QByteArray value; // JSON text; empty when deleted
    bool deleted = false;
    quint64 hlc = 0;
    quint64 writer = 0;
};

// Two concurrent writes of one key met at this peer: neither writer had
// seen the other's write, and the winner (the greater (hlc, writer)) is the
// key's value now. docs/API.md, "Conflicts", says exactly when a peer can
// tell, and so reports one.
struct Conflict
{
    QString key;
    Write winner;
    Write loser;
    bool localLost = false; // the loser is this peer's write (else the winner is)
    quint64 from = 0;       // peer whose message brought the other write
    Source source = Source::Delta;
};

// Another peer of a map.
struct Peer
{
    quint64 id = 0;
    QJsonObject presence;
    qint64 joinedMs = 0; // when we learned of it (physical clock)
};

// How long peers and stores keep tombstones by default (7 days): a peer
// away for longer rejoins instead of resurrecting deleted keys.
constexpr qint64 DefaultTombstoneRetentionMs = 7LL * 24 * 3600 * 1000;

} // namespace distmap

namespace Wire {

// The largest message a relay accepts unless it announces another limit in
// `welcome` (docs/PROTOCOL.md section 2).
constexpr qint64 DefaultMaxMessageBytes = 16 * 1024 * 1024;

// The relay's error codes (docs/PROTOCOL.md section 6).
enum class ErrorCode {
    NoError = 0,
    BadMessage = 1,
    UnknownType = 2,
    UnsupportedVersion = 3,
    HandshakeRequired = 4,
    UnknownMap = 5,
    TooLarge = 6,
    DuplicatePeer = 7,
    Unauthorized = 8,
    ReadOnly = 9,
    RateLimited = 10,
    AlreadyOpen = 11,
    UnknownPeer = 12,
    Backlog = 13,
    ServerFull = 14,
};

} // namespace Wire
