// A scripted stand-in for the relay: a WebSocket class whose sockets the
// test drives by hand (open, deliver messages, drop), recording what the
// peer sends. Lets the protocol logic be tested without the C++ binary.
import { Entry, decodeMessage, encodeMessage, peerToHex } from "../../resources/web/distmap.js";

export const turn = () => new Promise((r) => setImmediate(r));
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class FakeNet {
    constructor() {
        this.sockets = [];
        const net = this;
        this.WebSocket = class FakeWebSocket {
            constructor(url, protocols) {
                this.url = url;
                this.protocols = protocols;
                this.readyState = 0;
                this.binaryType = "blob";
                this.raw = []; // everything sent, as sent
                this.closedWith = null;
                net.sockets.push(this);
            }
            send(data) {
                if (this.readyState !== 1) throw new Error("send on a socket that is not open");
                this.raw.push(typeof data === "string" ? data : Uint8Array.from(data));
            }
            close(code, reason) {
                if (this.readyState >= 2) return;
                this.readyState = 3;
                this.closedWith = code;
                setImmediate(() => this.onclose && this.onclose({ code: code ?? 1005, reason: reason ?? "" }));
            }
            // --- the test's side ---
            open() {
                this.readyState = 1;
                this.onopen && this.onopen({});
            }
            deliver(msg) {
                const data = typeof msg === "string" || msg instanceof Uint8Array ? msg : JSON.stringify(msg);
                this.onmessage && this.onmessage({ data: typeof data === "string" ? data : Buffer.from(data) });
            }
            deliverRouted(message) {
                this.deliver(encodeMessage(message));
            }
            drop(code = 1006) {
                this.readyState = 3;
                this.onclose && this.onclose({ code, reason: "" });
            }
            get controls() {
                return this.raw.filter((m) => typeof m === "string").map((m) => JSON.parse(m));
            }
            get routed() {
                return this.raw.filter((m) => typeof m !== "string").map((m) => {
                    const d = decodeMessage(m);
                    if (!d.ok) throw new Error("the peer sent a malformed message: " + d.error);
                    d.message.size = m.length;
                    return d.message;
                });
            }
            control(type) {
                return this.controls.filter((m) => m.type === type);
            }
            sentRouted(type) {
                return this.routed.filter((m) => m.type === type);
            }
            clear() {
                this.raw = [];
            }
        };
    }
    get last() {
        return this.sockets[this.sockets.length - 1];
    }
}

/**
 * Opens the socket, answers hello with welcome and the map's open with
 * opened. Returns { socket, hello, peer } (peer: the id as BigInt).
 */
export async function handshake(net, { maps = [], id = 1, access = "rw", peers = [], time, maxMessage, welcomePeer } = {}) {
    const socket = net.last;
    socket.open();
    await turn();
    const [hello] = socket.control("hello");
    const welcome = { type: "welcome", version: 1, peer: welcomePeer ?? hello.peer, time: time ?? Date.now() };
    if (maxMessage !== undefined) welcome.maxMessage = maxMessage;
    socket.deliver(welcome);
    let next = id;
    for (const uri of maps) {
        socket.deliver({ type: "opened", map: uri, id: next++, access, peers });
    }
    await turn();
    return { socket, hello, peer: BigInt("0x" + welcome.peer) };
}

export const R = 0xbbn; // a responder's peer id
export const Rhex = peerToHex(R);
export const X = 0xccn; // another peer
export const Xhex = peerToHex(X);

export function entry(key, hlc, writer, json) {
    return new Entry(key, BigInt(hlc), BigInt(writer), json === null ? null : json);
}
