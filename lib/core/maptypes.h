#pragma once

#include <QByteArray>
#include <QJsonObject>
#include <QString>
#include <QtGlobal>

/// The plain value types that distmap's public API hands out: a change, a
/// delta seen on the wire, a peer, the relay's error codes. QtCore only and
/// no functions to link, so this is the one header of lib/core that is
/// installed with the library; Replica, MapState and Wire use these types
/// under their old names (Replica::Change, MapState::Outcome, ...).
namespace distmap {

/// Where a change came from: Local (this peer's set() or remove()), Delta
/// (another peer's write, broadcast by its writer), Sync (a sync chunk),
/// Repair (a write another peer sent because a sync showed the network
/// lacked it) or Store (loaded from a LocalStore at attach()).
enum class Source { Local, Delta, Sync, Repair, Store };

/// What applying a write did.
enum class Outcome {
    Applied,    //!< the write is now the key's current write
    Superseded, //!< a newer write to the key was already here
    Duplicate,  //!< this very write was already here
};

/// One applied change to one key.
/// A key the network forgot while this peer was away (a rejoin,
/// docs/PERSISTENCE.md) is reported as deleted, with hlc and writer 0.
struct Change
{
    QString key;              //!< the key that changed
    bool deleted = false;     //!< the change deleted the key
    QByteArray value;         //!< JSON text of the new value (empty when deleted)
    QByteArray oldValue;      //!< JSON text of the replaced value (empty if none)
    bool hadOldValue = false; //!< the key had a live value before (oldValue)
    quint64 hlc = 0;          //!< the write's hybrid logical clock
    quint64 writer = 0;       //!< peer id of the writer; this peer's id for local writes
    quint64 from = 0;         //!< peer the change came from (0 = local or store)
    Source source = Source::Local; //!< how the write reached this peer
};

/// One delta seen on the wire, in or out, with what applying it did.
/// For sync chunks, key is empty and count says how many entries it held
/// (0 for a chunk this peer sent).
struct DeltaEvent
{
    /// Received from the relay, or sent by this peer.
    enum Direction { Incoming, Outgoing };
    /// A write of a value, a delete, or a whole sync chunk.
    enum Operation { Set, Delete, SyncChunk };
    Direction direction = Incoming;     //!< in or out
    Operation operation = Set;          //!< what the message carried
    quint64 peer = 0;                   //!< origin (incoming) or this peer (outgoing); for a sync chunk sent, the peer it answers
    QString key;                        //!< the key written (empty for a sync chunk)
    QByteArray value;                   //!< JSON text of the value (empty for a delete or a sync chunk)
    quint64 hlc = 0;                    //!< the write's hybrid logical clock (0 for a sync chunk)
    quint64 writer = 0;                 //!< peer id of the write's writer (0 for a sync chunk)
    Outcome outcome = Outcome::Applied; //!< what applying it here did (Applied for what this peer sent)
    int count = 1;                      //!< entries in a sync chunk; 1 otherwise
    Source source = Source::Delta;      //!< Delta or Repair (incoming), Local (outgoing), Sync (sync chunks)
};

/// One write of one key: a value (JSON text) or a delete.
struct Write
{
    QByteArray value;     //!< JSON text; empty when deleted
    bool deleted = false; //!< the write is a delete
    quint64 hlc = 0;      //!< the write's hybrid logical clock
    quint64 writer = 0;   //!< peer id of the writer
};

/// Two concurrent writes of one key met at this peer: neither writer had
/// seen the other's write, and the winner (the greater (hlc, writer)) is the
/// key's value now. docs/API.md, "Conflicts", says exactly when a peer can
/// tell, and so reports one.
struct Conflict
{
    QString key;                   //!< the key both wrote
    Write winner;                  //!< the write that won (the key's value now)
    Write loser;                   //!< the write it beat
    bool localLost = false;        //!< the loser is this peer's write (else the winner is)
    quint64 from = 0;              //!< peer whose message brought the other write
    Source source = Source::Delta; //!< how the other write arrived: Delta, Sync or Repair
};

/// Another peer of a map.
struct Peer
{
    quint64 id = 0;       //!< its peer id
    QJsonObject presence; //!< its presence object (DistributedMap::setPresence())
    qint64 joinedMs = 0;  //!< when we learned of it (physical clock, ms since the epoch)
};

/// How long peers and stores keep tombstones by default (7 days): a peer
/// away for longer rejoins instead of resurrecting deleted keys.
constexpr qint64 DefaultTombstoneRetentionMs = 7LL * 24 * 3600 * 1000;

} // namespace distmap

/// The wire protocol's names that the public API uses; the rest of
/// namespace Wire is internal (lib/core/wire.h).
namespace Wire {

/// The largest message a relay accepts unless it announces another limit in
/// `welcome` (docs/PROTOCOL.md section 2).
constexpr qint64 DefaultMaxMessageBytes = 16 * 1024 * 1024;

/// The relay's error codes (docs/PROTOCOL.md section 6).
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
