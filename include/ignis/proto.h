/* ignis/proto.h: the control-plane wire protocol that the coordinator, the
 * workers, the ranks and the CLI share (docs/protocol.md has every message).
 *
 * Transport: ZeroMQ. The coordinator binds a ROUTER socket; everybody else
 * connects a DEALER. A message is two frames (a ROUTER sees the peer's
 * identity frame before them):
 *
 *   [header: 8 bytes] "IGNS" | u16 protocol version (big-endian) | u16 type (big-endian)
 *   [body: a UTF-8 JSON object, 1 .. IG_PROTO_MAX_BODY bytes]
 *
 * Every body is checked against its type's schema (required and optional
 * fields, JSON types, ranges, lengths, base64). Unknown fields are accepted
 * and ignored (a newer peer may add fields); a known field of the wrong type
 * or out of range, null included, is an error. A malformed message is
 * IG_ERR_FORMAT with a one-line message naming what was wrong
 * ("STATUS: field 'job': expected a non-negative integer, got -3"); nothing
 * received can crash the decoder. Bulk data never travels here. */
#ifndef IGNIS_PROTO_H
#define IGNIS_PROTO_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "ignis/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define IG_PROTO_MAGIC "IGNS"
#define IG_PROTO_VERSION 1
#define IG_PROTO_HEADER_SIZE 8
#define IG_PROTO_MAX_BODY (1u << 20)       /* bytes of JSON text */
#define IG_PROTO_MAX_WORLD 65536           /* ranks of one job */
#define IG_PROTO_MAX_BLOB 8192             /* decoded bytes of an address blob */
#define IG_PROTO_MAX_LOG_CHUNK (512u << 10) /* decoded bytes of one LOGS_REPLY */
#define IG_PROTO_MAX_LOG_DATA (64u << 10)   /* decoded bytes of one LOG_DATA */
#define IG_PROTO_MAX_PEER 255              /* bytes of a ZeroMQ routing id */

/* The message types: one table generates the enum (wire values 1, 2, ... in
 * this order; 0 is never sent) and the names. Types only grow at the end. */
#define IG_MSG_LIST(X)                                                       \
    X(IG_MSG_HELLO, "HELLO")                       /* worker -> coordinator */ \
    X(IG_MSG_HELLO_ACK, "HELLO_ACK")               /* coordinator -> worker */ \
    X(IG_MSG_HEARTBEAT, "HEARTBEAT")               /* worker -> coordinator */ \
    X(IG_MSG_SUBMIT, "SUBMIT")                     /* client -> coordinator */ \
    X(IG_MSG_SUBMIT_ACK, "SUBMIT_ACK")             /* coordinator -> client */ \
    X(IG_MSG_STATUS, "STATUS")                     /* client -> coordinator */ \
    X(IG_MSG_STATUS_REPLY, "STATUS_REPLY")         /* coordinator -> client */ \
    X(IG_MSG_CANCEL, "CANCEL")                     /* client -> coordinator */ \
    X(IG_MSG_LOGS, "LOGS")                         /* client -> coordinator */ \
    X(IG_MSG_LOGS_REPLY, "LOGS_REPLY")             /* coordinator -> client */ \
    X(IG_MSG_START_RANKS, "START_RANKS")           /* coordinator -> worker */ \
    X(IG_MSG_RANK_EXIT, "RANK_EXIT")               /* worker -> coordinator */ \
    X(IG_MSG_ABORT, "ABORT")                       /* coordinator -> worker */ \
    X(IG_MSG_RENDEZVOUS, "RENDEZVOUS")             /* rank -> coordinator */   \
    X(IG_MSG_RENDEZVOUS_REPLY, "RENDEZVOUS_REPLY") /* coordinator -> rank */   \
    X(IG_MSG_ERROR, "ERROR")                       /* either way */            \
    X(IG_MSG_OK, "OK")                             /* either way */            \
    X(IG_MSG_LOG_DATA, "LOG_DATA")                 /* worker -> coordinator */ \
    X(IG_MSG_LOG_ACK, "LOG_ACK")                   /* coordinator -> worker */

typedef enum ig_msg_type {
    IG_MSG_NONE = 0, /* never on the wire: "no type" (an unreadable header) */
#define IG__MSG_ENUM(name, text) name,
    IG_MSG_LIST(IG__MSG_ENUM)
#undef IG__MSG_ENUM
    IG_MSG_COUNT
} ig_msg_type;

/* "HELLO" and the like; "NONE" for IG_MSG_NONE or a value out of range. */
const char *ig_msg_name(ig_msg_type type);

/* One frame of a received message (not owned). */
typedef struct ig_proto_frame {
    const void *data;
    size_t size;
} ig_proto_frame;

/* An encoded message: the header frame and the body frame (malloc'd JSON
 * text, not NUL-terminated). */
typedef struct ig_proto_wire {
    unsigned char header[IG_PROTO_HEADER_SIZE];
    char *body;
    size_t body_size;
} ig_proto_wire;

/* A decoded message. */
typedef struct ig_proto_msg {
    ig_msg_type type; /* IG_MSG_NONE when the header could not be read */
    json_t *body;     /* owned (ig_proto_msg_clear); NULL when decoding failed */
    unsigned char peer[IG_PROTO_MAX_PEER]; /* the sender's routing id (ROUTER receives) */
    size_t peer_size;                      /* 0: none (DEALER receives) */
} ig_proto_msg;

/* Checks a body against the schema of its type: IG_OK, or IG_ERR_FORMAT with
 * "TYPE: field 'x': expected ..., got ...". */
ig_status ig_proto_validate(ig_msg_type type, const json_t *body);

/* Validates and encodes a message (body NULL: an empty object). Fails with
 * IG_ERR_FORMAT on an invalid or oversized body; *out is then empty. */
ig_status ig_proto_encode(ig_msg_type type, const json_t *body, ig_proto_wire *out);
void ig_proto_wire_free(ig_proto_wire *w);

/* Decodes frames[offset] (header) and frames[offset + 1] (body); the frames
 * before offset (a ROUTER's identity) are not looked at. On failure the
 * status is IG_ERR_FORMAT, out->body is NULL and out->type is the header's
 * type when the header was valid. out->peer is left as it was. */
ig_status ig_proto_decode(const ig_proto_frame *frames, size_t n, size_t offset, ig_proto_msg *out);
/* Releases the body; the message can be reused. */
void ig_proto_msg_clear(ig_proto_msg *m);

/* The body of an ERROR: {"code": ig_status_name(code), "message": message}
 * (the message cut to 1024 bytes, non-UTF-8 bytes replaced with '?'). */
json_t *ig_proto_error_body(ig_status code, const char *message);

/* Base64 (standard alphabet, '=' padding) for address blobs and log chunks.
 * encode: a malloc'd NUL-terminated string (NULL: out of memory). decode:
 * canonical input only; IG_ERR_FORMAT on a bad character, bad padding, or
 * more than cap decoded bytes; *n_out gets the decoded size. */
char *ig_proto_b64_encode(const void *data, size_t n);
ig_status ig_proto_b64_decode(const char *s, size_t len, void *out, size_t cap, size_t *n_out);

/* ZeroMQ helpers (IG_ERR_UNSUPPORTED in a build without ZeroMQ). sock is a
 * ROUTER or DEALER socket; timeout_ms >= 0 bounds every wait (zmq_poll), so
 * none blocks forever: IG_ERR_TIMEOUT when it passes, IG_ERR_COMM on a
 * ZeroMQ error.
 *
 * send: validates, encodes and sends; peer (ROUTER sockets) is the routing id
 * to send to, NULL for a DEALER. A ROUTER drops a message to an unknown peer
 * silently unless ZMQ_ROUTER_MANDATORY is set (then IG_ERR_COMM).
 * recv: receives one whole message (router: the first frame is the identity,
 * copied into out->peer) and decodes it. IG_ERR_FORMAT means a message was
 * consumed but is malformed: out->peer tells whom to answer (reply_error).
 * reply_error: sends ERROR {code, message, request} to the sender of req
 * (request: the name of req's type, when its header could be read). */
ig_status ig_proto_send(void *sock, const void *peer, size_t peer_size, ig_msg_type type,
                        const json_t *body, int timeout_ms);
ig_status ig_proto_recv(void *sock, bool router, int timeout_ms, ig_proto_msg *out);
ig_status ig_proto_reply_error(void *sock, const ig_proto_msg *req, ig_status code,
                               const char *message, int timeout_ms);


/* ---- Security: CurveZMQ (docs/protocol.md "Security") ----
 * Keys (coordinator/keys.c) are Z85 text, IG_PROTO_KEY_LEN characters. A key
 * pair file is JSON {"public": KEY, "secret": KEY} readable by its owner only
 * (mode 0600); FILE.pub next to it holds the public key on one line. */
#define IG_PROTO_KEY_LEN 40

typedef struct ig_proto_keypair {
    char public_key[IG_PROTO_KEY_LEN + 1];
    char secret_key[IG_PROTO_KEY_LEN + 1];
} ig_proto_keypair;

/* Whether s is one Z85-encoded CurveZMQ key (40 characters of the Z85 alphabet). */
bool ig_proto_key_is_z85(const char *s);
/* A new key pair (libzmq's zmq_curve_keypair). */
ig_status ig_proto_keypair_generate(ig_proto_keypair *out);
/* Writes path (mode 0600) and path.pub (mode 0644), each atomically (a
 * temporary file renamed); IG_ERR_STATE, nothing written, when either exists
 * and !overwrite. */
ig_status ig_proto_keypair_save(const char *path, const ig_proto_keypair *kp, bool overwrite);
/* Loads a key pair file: IG_ERR_IO (unreadable), IG_ERR_INVALID (readable by
 * group or others, as ssh refuses), IG_ERR_FORMAT (bad JSON, a field that is
 * no Z85 key, a public key that is not the secret key's), each naming the
 * file and the field. */
ig_status ig_proto_keypair_load(const char *path, ig_proto_keypair *out);
/* A public key given as its Z85 text or as the path of a file holding it on
 * its first line (a .pub file); what names the source in messages
 * ("IGNIS_COORDINATOR_KEY", "--coordinator-key"). */
ig_status ig_proto_public_key(const char *key_or_path, const char *what, char out[IG_PROTO_KEY_LEN + 1]);

/* A client of the coordinator (coordinator/client.c): every DEALER that talks
 * to it (the CLI, workers, ranks) is opened here, so all get the same
 * security from the environment: IGNIS_KEY = this client's key pair file,
 * IGNIS_COORDINATOR_KEY = the coordinator's public key (Z85 text or a .pub
 * file). Both unset (or empty): plaintext; one without the other: an error
 * naming the missing one. */
typedef struct ig_proto_client {
    void *sock;          /* the DEALER: ZMQ_LINGER 0, ZMQ_IMMEDIATE, ZMTP heartbeats (1 s, 5 s) */
    void *monitor;       /* a PAIR receiving sock's events: handshake succeeded/failed, disconnected */
    char address[256];   /* the coordinator's */
    char key_file[1024]; /* IGNIS_KEY; "" when plaintext */
    char failure[512];   /* the last handshake failure that ZeroMQ retries by itself ("" when none) */
} ig_proto_client;

/* Creates the DEALER in the ZeroMQ context ctx with the environment's
 * security and its monitor, and connects it to address. IG_ERR_FORMAT /
 * IG_ERR_IO / IG_ERR_INVALID for bad keys or variables, IG_ERR_COMM when
 * ZeroMQ refuses; *c is then closed already. */
ig_status ig_proto_client_open(void *ctx, const char *address, ig_proto_client *c);
/* The next event of c's monitor without waiting: true with the ZMQ_EVENT_*
 * and its value, false when none is pending. */
bool ig_proto_client_event(ig_proto_client *c, int *event, int *value);
/* What a monitor event means for the client: IG_OK for events that are no
 * failure; IG_ERR_COMM with a one-line message for a handshake failure
 * (refused key, a plaintext client of a CurveZMQ coordinator or the reverse,
 * a coordinator key that does not match). *fatal: ZeroMQ will not retry
 * (the coordinator refused), as opposed to a failure it retries. */
ig_status ig_proto_client_failure(ig_proto_client *c, int event, int value, bool *fatal);
/* Waits at most timeout_ms until c->sock is ready for events (ZMQ_POLLIN,
 * ZMQ_POLLOUT), watching the monitor: IG_ERR_COMM at once when the
 * coordinator refused the handshake, IG_ERR_TIMEOUT when the time passed
 * (c->failure then tells of a handshake that failed meanwhile). */
ig_status ig_proto_client_wait(ig_proto_client *c, short events, int timeout_ms);
void ig_proto_client_close(ig_proto_client *c);

#ifdef __cplusplus
}
#endif
#endif
