/* massivekit.proxy._fanout: the proxy's fan-out hot path in C.
 *
 * The pure-Python router (router.py) stays the reference:
 * this module routes exactly as it does (a differential test checks every
 * cluster's events and the odd ones), only without bytecode per event or per
 * (event, client). PERFORMANCE.md asks for a few tens of nanoseconds per
 * delivery; here a delivery is one span appended to a C array.
 *
 *   Sink(mark, deliver=None) one client's place in the index: the spans of the
 *                            frame being routed, and where its frames go. With
 *                            deliver, each frame is handed to it as a tuple
 *                            (payload, events, wrap); without, the sink is the
 *                            client's send buffer: frames are written into it
 *                            as WebSocket text frames, ready for the socket
 *                            (push, take, drop_oldest, clear), and mark is
 *                            called when it stops being empty.
 *   route(frame, wild, specific, events_in, events_out)
 *                            scan one upstream frame (a JSON array of event
 *                            objects), hand every sink its events as one frame,
 *                            return (events, delivered, whole); or None when the
 *                            frame is outside the scanner's plain grammar (a
 *                            backslash, non-ASCII, deep nesting, invalid JSON):
 *                            the caller then routes it with route_parts.
 *   route_parts(frame, evs, instruments, raws, wild, specific, events_in, events_out)
 *                            the same from keys the caller decoded itself.
 *   send_all(sessions)       one write round: every session whose sink is
 *                            attached to its socket (Sink.attach) and whose
 *                            transport holds nothing gets its whole buffer in
 *                            one non-blocking send(); the rest come back as
 *                            (session, rest): rest None for the caller's own
 *                            path, or the bytes the socket did not take, for
 *                            the transport to write in order.
 *
 * The scanner never decides that a frame is bad: anything it does not
 * recognise as plain JSON goes back to msgspec, which raises the clear error.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#define MAX_DEPTH 32

/* ---------------------------------------------------------------- Sink */

typedef struct {
    const char *ptr;
    Py_ssize_t len;
} Span;

typedef struct {
    Py_ssize_t size;   /* bytes on the wire, header included */
    Py_ssize_t events; /* negative: a control frame, never dropped */
} Record;

typedef struct {
    PyObject_HEAD
    PyObject *deliver; /* NULL: the sink buffers */
    PyObject *mark;
    /* the frame being routed */
    Span *spans;
    Py_ssize_t count;
    Py_ssize_t cap;
    Py_ssize_t bytes;
    /* the send buffer: wire-ready frames, and one record per frame */
    char *buf;
    Py_ssize_t len;
    Py_ssize_t bufcap;
    Record *recs;
    Py_ssize_t nrecs;
    Py_ssize_t reccap;
    Py_ssize_t events;
    /* the direct path (send_all): the socket, and its transport, which owns it */
    int fd;
    PyObject *transport;
    unsigned long long sent_frames, sent_events, sent_bytes;
} SinkObject;

static PyTypeObject SinkType;

static int
Sink_init(SinkObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"mark", "deliver", NULL};
    PyObject *mark, *deliver = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|O:Sink", kwlist, &mark, &deliver))
        return -1;
    if (!PyCallable_Check(mark) || (deliver != Py_None && !PyCallable_Check(deliver))) {
        PyErr_SetString(PyExc_TypeError, "Sink: mark and deliver must be callable");
        return -1;
    }
    Py_INCREF(mark);
    Py_XSETREF(self->mark, mark);
    self->fd = -1;
    if (deliver == Py_None) {
        Py_CLEAR(self->deliver);
    } else {
        Py_INCREF(deliver);
        Py_XSETREF(self->deliver, deliver);
    }
    return 0;
}

static int
Sink_traverse(SinkObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->deliver);
    Py_VISIT(self->mark);
    Py_VISIT(self->transport);
    return 0;
}

static int
Sink_clear(SinkObject *self)
{
    Py_CLEAR(self->deliver);
    Py_CLEAR(self->mark);
    Py_CLEAR(self->transport);
    self->fd = -1;
    return 0;
}

static void
Sink_dealloc(SinkObject *self)
{
    PyObject_GC_UnTrack(self);
    Sink_clear(self);
    PyMem_Free(self->spans);
    PyMem_Free(self->buf);
    PyMem_Free(self->recs);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
Sink_repr(SinkObject *self)
{
    return PyUnicode_FromFormat("Sink(frames=%zd, bytes=%zd)", self->nrecs, self->len);
}

static PyObject *
Sink_get_pending(SinkObject *self, void *closure)
{
    return PyLong_FromSsize_t(self->count);
}

static PyObject *
Sink_get_buffered(SinkObject *self, void *closure)
{
    return PyLong_FromSsize_t(self->len);
}

static PyObject *
Sink_get_frames(SinkObject *self, void *closure)
{
    return PyLong_FromSsize_t(self->nrecs);
}

static PyObject *
Sink_get_attached(SinkObject *self, void *closure)
{
    return PyBool_FromLong(self->fd >= 0);
}

static PyObject *
Sink_get_sent(SinkObject *self, void *closure)
{
    return Py_BuildValue("(KKK)", self->sent_frames, self->sent_events, self->sent_bytes);
}

static PyGetSetDef Sink_getset[] = {
    {"attached", (getter)Sink_get_attached, NULL, "Whether send_all may write this sink's socket.", NULL},
    {"sent", (getter)Sink_get_sent, NULL, "(frames, events, bytes) written by send_all.", NULL},
    {"pending", (getter)Sink_get_pending, NULL, "Events held for the frame being routed (0 between frames).", NULL},
    {"buffered", (getter)Sink_get_buffered, NULL, "Bytes in the send buffer.", NULL},
    {"frames", (getter)Sink_get_frames, NULL, "Frames in the send buffer.", NULL},
    {NULL},
};

static inline Py_ssize_t header_size(Py_ssize_t n);
static inline char *put_header(char *out, Py_ssize_t n);

/* Room for one more frame of `size` wire bytes; -1 with MemoryError. */
static int
sink_reserve(SinkObject *self, Py_ssize_t size)
{
    if (self->len + size > self->bufcap) {
        Py_ssize_t cap = self->bufcap ? self->bufcap : 4096;
        while (cap < self->len + size)
            cap *= 2;
        char *grown = PyMem_Realloc(self->buf, cap);
        if (grown == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        self->buf = grown;
        self->bufcap = cap;
    }
    if (self->nrecs == self->reccap) {
        Py_ssize_t cap = self->reccap ? self->reccap * 2 : 64;
        Record *grown = PyMem_Realloc(self->recs, cap * sizeof(Record));
        if (grown == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        self->recs = grown;
        self->reccap = cap;
    }
    return 0;
}

/* Note a frame of `size` wire bytes just written; call mark if the buffer was empty. */
static int
sink_commit(SinkObject *self, Py_ssize_t size, Py_ssize_t events)
{
    int was_empty = self->nrecs == 0;
    self->recs[self->nrecs].size = size;
    self->recs[self->nrecs].events = events;
    self->nrecs++;
    self->len += size;
    if (events > 0)
        self->events += events;
    if (was_empty) {
        PyObject *rc = PyObject_CallNoArgs(self->mark);
        if (rc == NULL)
            return -1;
        Py_DECREF(rc);
    }
    return 0;
}

static PyObject *
Sink_push(SinkObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"payload", "events", "wrap", NULL};
    Py_buffer view;
    Py_ssize_t events;
    int wrap = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "y*n|p:push", kwlist, &view, &events, &wrap))
        return NULL;
    Py_ssize_t body = view.len + (wrap ? 2 : 0);
    Py_ssize_t size = header_size(body) + body;
    if (sink_reserve(self, size) < 0) {
        PyBuffer_Release(&view);
        return NULL;
    }
    char *out = put_header(self->buf + self->len, body);
    if (wrap)
        *out++ = '[';
    memcpy(out, view.buf, view.len);
    out += view.len;
    if (wrap)
        *out++ = ']';
    PyBuffer_Release(&view);
    if (sink_commit(self, size, events) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static void
sink_reset(SinkObject *self)
{
    self->len = 0;
    self->nrecs = 0;
    self->events = 0;
}

#define KEEP_BYTES (256 * 1024)

/* Empty the buffer; give its memory back if a burst made it large and it
 * held little this time (1,000 clients must not each keep a burst's worth). */
static void
sink_empty(SinkObject *self, Py_ssize_t held)
{
    if (self->bufcap > KEEP_BYTES && held * 4 < self->bufcap) {
        PyMem_Free(self->buf);
        self->buf = NULL;
        self->bufcap = 0;
        PyMem_Free(self->recs);
        self->recs = NULL;
        self->reccap = 0;
    }
    sink_reset(self);
}

static PyObject *
Sink_take(SinkObject *self, PyObject *unused)
{
    PyObject *data = PyBytes_FromStringAndSize(self->buf, self->len);
    if (data == NULL)
        return NULL;
    PyObject *result = Py_BuildValue("(Nnn)", data, self->nrecs, self->events);
    if (result != NULL)
        sink_empty(self, self->len);
    return result;
}

static PyObject *
Sink_clear_buffer(SinkObject *self, PyObject *unused)
{
    sink_empty(self, 0);
    Py_RETURN_NONE;
}

static PyObject *
Sink_drop_oldest(SinkObject *self, PyObject *arg)
{
    Py_ssize_t over = PyLong_AsSsize_t(arg);
    if (over == -1 && PyErr_Occurred())
        return NULL;
    Py_ssize_t frames = 0, events = 0, dropped = 0;
    Py_ssize_t read = 0, write = 0, kept = 0;
    for (Py_ssize_t i = 0; i < self->nrecs; i++) {
        Record rec = self->recs[i];
        if (dropped < over && rec.events >= 0) {
            dropped += rec.size;
            frames++;
            events += rec.events;
        } else {
            if (read != write)
                memmove(self->buf + write, self->buf + read, rec.size);
            write += rec.size;
            self->recs[kept++] = rec;
        }
        read += rec.size;
    }
    self->len = write;
    self->nrecs = kept;
    self->events -= events;
    return Py_BuildValue("(nn)", frames, events);
}

static PyObject *
Sink_attach(SinkObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "attach(fd, transport) takes two arguments");
        return NULL;
    }
    long fd = PyLong_AsLong(args[0]);
    if (fd == -1 && PyErr_Occurred())
        return NULL;
    if (fd < 0 || fd > INT_MAX) {
        PyErr_SetString(PyExc_ValueError, "attach: fd must be >= 0");
        return NULL;
    }
    Py_INCREF(args[1]);
    Py_XSETREF(self->transport, args[1]);
    self->fd = (int)fd;
    Py_RETURN_NONE;
}

static PyObject *
Sink_detach(SinkObject *self, PyObject *unused)
{
    self->fd = -1;
    Py_CLEAR(self->transport);
    Py_RETURN_NONE;
}

static PyMethodDef Sink_methods[] = {
    {"attach", (PyCFunction)(void (*)(void))Sink_attach, METH_FASTCALL,
     "attach(fd, transport): let send_all write the buffer to fd while transport (which "
     "owns the socket) is open and holds nothing."},
    {"detach", (PyCFunction)Sink_detach, METH_NOARGS, "detach(): no more direct sends."},
    {"push", (PyCFunction)(void (*)(void))Sink_push, METH_VARARGS | METH_KEYWORDS,
     "push(payload, events, wrap=False): buffer one frame (events < 0: a control frame)."},
    {"take", (PyCFunction)Sink_take, METH_NOARGS,
     "take() -> (data, frames, events): everything buffered, as one bytes; the buffer empties."},
    {"clear", (PyCFunction)Sink_clear_buffer, METH_NOARGS, "clear(): forget everything buffered."},
    {"drop_oldest", (PyCFunction)Sink_drop_oldest, METH_O,
     "drop_oldest(over) -> (frames, events): drop the oldest data frames until `over` bytes "
     "are gone; control frames stay, in order."},
    {NULL},
};

static PyTypeObject SinkType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "massivekit.proxy._fanout.Sink",
    .tp_basicsize = sizeof(SinkObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Sink(mark, deliver=None): one client's place in the routing index, and "
              "(without deliver) its send buffer.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Sink_init,
    .tp_dealloc = (destructor)Sink_dealloc,
    .tp_traverse = (traverseproc)Sink_traverse,
    .tp_clear = (inquiry)Sink_clear,
    .tp_repr = (reprfunc)Sink_repr,
    .tp_getset = Sink_getset,
    .tp_methods = Sink_methods,
};

/* ------------------------------------------------------- routing state */

typedef struct {
    PyObject *ev;        /* owned str */
    int field;           /* route(): its instrument field (known_field), -1 if unknown */
    PyObject *wild;      /* borrowed tuple of sinks, or NULL */
    PyObject *by_ticker; /* borrowed dict, or NULL */
    Py_ssize_t in;
    Py_ssize_t out;
} EvEntry;

typedef struct {
    PyObject *wild;
    PyObject *specific;
    EvEntry *evs; /* the codes seen in this frame (a handful) */
    Py_ssize_t nevs;
    Py_ssize_t evcap;
    SinkObject **touched;
    Py_ssize_t ntouched;
    Py_ssize_t cap;
} State;

static void
state_init(State *st, PyObject *wild, PyObject *specific)
{
    st->wild = wild;
    st->specific = specific;
    st->evs = NULL;
    st->nevs = 0;
    st->evcap = 0;
    st->touched = NULL;
    st->ntouched = 0;
    st->cap = 0;
}

/* Forget every span and drop every reference the state holds. */
static void
state_release(State *st)
{
    for (Py_ssize_t i = 0; i < st->ntouched; i++) {
        st->touched[i]->count = 0;
        st->touched[i]->bytes = 0;
        Py_DECREF(st->touched[i]);
    }
    PyMem_Free(st->touched);
    st->touched = NULL;
    st->ntouched = 0;
    for (Py_ssize_t i = 0; i < st->nevs; i++)
        Py_DECREF(st->evs[i].ev);
    PyMem_Free(st->evs);
    st->evs = NULL;
    st->nevs = 0;
}

/* The index of a new entry for code ev (a reference stolen), or -1 with an error set. */
static Py_ssize_t
state_add_ev(State *st, PyObject *ev)
{
    if (st->nevs == st->evcap) {
        Py_ssize_t cap = st->evcap ? st->evcap * 2 : 8;
        EvEntry *grown = PyMem_Realloc(st->evs, cap * sizeof(EvEntry));
        if (grown == NULL) {
            Py_DECREF(ev);
            PyErr_NoMemory();
            return -1;
        }
        st->evs = grown;
        st->evcap = cap;
    }
    EvEntry *e = &st->evs[st->nevs];
    e->ev = ev;
    e->field = -1;
    e->in = e->out = 0;
    e->wild = PyDict_GetItemWithError(st->wild, ev);
    if (e->wild == NULL && PyErr_Occurred())
        goto fail;
    if (e->wild != NULL && !PyTuple_CheckExact(e->wild)) {
        PyErr_SetString(PyExc_TypeError, "route: wildcard targets must be tuples");
        goto fail;
    }
    e->by_ticker = PyDict_GetItemWithError(st->specific, ev);
    if (e->by_ticker == NULL && PyErr_Occurred())
        goto fail;
    if (e->by_ticker != NULL && !PyDict_CheckExact(e->by_ticker)) {
        PyErr_SetString(PyExc_TypeError, "route: specific targets must be dicts");
        goto fail;
    }
    return st->nevs++;
fail:
    Py_DECREF(ev);
    return -1;
}

static int
deliver_to(State *st, EvEntry *e, PyObject *targets, const char *ptr, Py_ssize_t len)
{
    Py_ssize_t n = PyTuple_GET_SIZE(targets);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyTuple_GET_ITEM(targets, i);
        if (!Py_IS_TYPE(item, &SinkType)) {
            PyErr_SetString(PyExc_TypeError, "route: targets must be Sink objects");
            return -1;
        }
        SinkObject *sink = (SinkObject *)item;
        if (sink->count == 0) {
            if (st->ntouched == st->cap) {
                Py_ssize_t cap = st->cap ? st->cap * 2 : 64;
                SinkObject **grown = PyMem_Realloc(st->touched, cap * sizeof(SinkObject *));
                if (grown == NULL) {
                    PyErr_NoMemory();
                    return -1;
                }
                st->touched = grown;
                st->cap = cap;
            }
            Py_INCREF(sink);
            st->touched[st->ntouched++] = sink;
        }
        if (sink->count == sink->cap) {
            Py_ssize_t cap = sink->cap ? sink->cap * 2 : 16;
            Span *grown = PyMem_Realloc(sink->spans, cap * sizeof(Span));
            if (grown == NULL) {
                PyErr_NoMemory();
                return -1;
            }
            sink->spans = grown;
            sink->cap = cap;
        }
        sink->spans[sink->count].ptr = ptr;
        sink->spans[sink->count].len = len;
        sink->count++;
        sink->bytes += len;
    }
    e->out += n;
    return 0;
}

/* Route one event: ev's entry, its instrument (borrowed str or NULL), its bytes. */
static int
route_event(State *st, EvEntry *e, PyObject *instrument, const char *ptr, Py_ssize_t len)
{
    e->in++;
    if (e->wild != NULL && deliver_to(st, e, e->wild, ptr, len) < 0)
        return -1;
    if (e->by_ticker != NULL && instrument != NULL) {
        PyObject *targets = PyDict_GetItemWithError(e->by_ticker, instrument);
        if (targets == NULL)
            return PyErr_Occurred() ? -1 : 0;
        if (!PyTuple_CheckExact(targets)) {
            PyErr_SetString(PyExc_TypeError, "route: specific targets must be tuples");
            return -1;
        }
        return deliver_to(st, e, targets, ptr, len);
    }
    return 0;
}

static int
add_count(PyObject *counts, PyObject *key, Py_ssize_t n)
{
    PyObject *old = PyDict_GetItemWithError(counts, key);
    if (old == NULL && PyErr_Occurred())
        return -1;
    Py_ssize_t base = 0;
    if (old != NULL) {
        base = PyLong_AsSsize_t(old);
        if (base == -1 && PyErr_Occurred())
            return -1;
    }
    PyObject *value = PyLong_FromSsize_t(base + n);
    if (value == NULL)
        return -1;
    int rc = PyDict_SetItem(counts, key, value);
    Py_DECREF(value);
    return rc;
}

/* The sink's spans joined by commas at `out`; returns the end. */
static char *
join_spans(char *out, const SinkObject *sink)
{
    const Span *spans = sink->spans;
    memcpy(out, spans[0].ptr, spans[0].len);
    out += spans[0].len;
    for (Py_ssize_t j = 1; j < sink->count; j++) {
        *out++ = ',';
        memcpy(out, spans[j].ptr, spans[j].len);
        out += spans[j].len;
    }
    return out;
}

/* Count, then hand each touched sink its frame; releases the state. */
static PyObject *
state_finish(State *st, PyObject *frame, const char *frame_ptr, Py_ssize_t frame_len,
             Py_ssize_t events, PyObject *events_in, PyObject *events_out)
{
    Py_ssize_t delivered = 0, whole = 0;
    int failed = 0;
    for (Py_ssize_t i = 0; i < st->nevs && !failed; i++) {
        EvEntry *e = &st->evs[i];
        if (e->in && add_count(events_in, e->ev, e->in) < 0)
            failed = 1;
        else if (e->out && add_count(events_out, e->ev, e->out) < 0)
            failed = 1;
    }
    PyObject *count_obj = NULL;
    for (Py_ssize_t i = 0; i < st->ntouched && !failed; i++) {
        SinkObject *sink = st->touched[i];
        Py_ssize_t count = sink->count;
        PyObject *payload;
        int wrap = count != events;
        if (sink->deliver == NULL) { /* a send buffer: write the frame into it */
            if (!wrap && frame_ptr == NULL) {
                PyErr_SetString(PyExc_TypeError, "route: the frame must be bytes");
                failed = 1;
                break;
            }
            Py_ssize_t body = wrap ? sink->bytes + count + 1 : frame_len;
            Py_ssize_t size = header_size(body) + body;
            if (sink_reserve(sink, size) < 0) {
                failed = 1;
                break;
            }
            char *out = put_header(sink->buf + sink->len, body);
            if (wrap) {
                *out++ = '[';
                out = join_spans(out, sink);
                *out = ']';
            } else {
                memcpy(out, frame_ptr, frame_len);
                whole++;
            }
            sink->count = 0;
            sink->bytes = 0;
            if (sink_commit(sink, size, count) < 0) {
                failed = 1;
                break;
            }
            delivered++;
            continue;
        }
        if (!wrap) {
            Py_INCREF(frame);
            payload = frame;
            whole++;
        } else {
            payload = PyBytes_FromStringAndSize(NULL, sink->bytes + count - 1);
            if (payload == NULL) {
                failed = 1;
                break;
            }
            join_spans(PyBytes_AS_STRING(payload), sink);
        }
        sink->count = 0;
        sink->bytes = 0;
        count_obj = PyLong_FromSsize_t(count);
        if (count_obj == NULL) {
            Py_DECREF(payload);
            failed = 1;
            break;
        }
        PyObject *item = PyTuple_New(3);
        if (item == NULL) {
            Py_DECREF(payload);
            Py_DECREF(count_obj);
            failed = 1;
            break;
        }
        PyTuple_SET_ITEM(item, 0, payload);
        PyTuple_SET_ITEM(item, 1, count_obj);
        PyObject *flag = wrap ? Py_True : Py_False;
        Py_INCREF(flag);
        PyTuple_SET_ITEM(item, 2, flag);
        PyObject *rc = PyObject_CallOneArg(sink->deliver, item);
        Py_DECREF(item);
        if (rc == NULL) {
            failed = 1;
            break;
        }
        Py_DECREF(rc);
        rc = PyObject_CallNoArgs(sink->mark);
        if (rc == NULL) {
            failed = 1;
            break;
        }
        Py_DECREF(rc);
        delivered++;
    }
    state_release(st);
    if (failed)
        return NULL;
    return Py_BuildValue("(nnn)", events, delivered, whole);
}

/* ------------------------------------------------------------- scanner */

typedef struct {
    const char *p;
    const char *end;
} Cur;

static inline void
skip_ws(Cur *c)
{
    const char *p = c->p;
    /* Massive sends no blanks: one comparison in the usual case. */
    while (p < c->end && (unsigned char)*p <= ' ' &&
           (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    c->p = p;
}

/* Bytes that end a plain string's body: the quote, and what sends it back to
 * msgspec (a backslash, a control character, non-ASCII). */
static unsigned char STRING_STOP[256];

static void
init_tables(void)
{
    for (int ch = 0; ch < 256; ch++)
        STRING_STOP[ch] = ch == '"' || ch == '\\' || ch < 0x20 || ch >= 0x80;
}

/* A plain string (no escape, ASCII, no control character): its body.
 * The scanned bytes are a bytes object's, which always end in a NUL: the
 * NUL stops the loop like any control character, so it needs no bound. */
static inline int
scan_string(Cur *c, const char **start, Py_ssize_t *len)
{
    const unsigned char *p = (const unsigned char *)c->p + 1; /* past the opening quote */
    const unsigned char *s = p;
    while (!STRING_STOP[*p])
        p++;
    if (*p != '"' || (const char *)p >= c->end)
        return -1;
    *start = (const char *)s;
    *len = p - s;
    c->p = (const char *)p + 1;
    return 0;
}

static inline int
is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

/* A JSON number, by the grammar. */
static int
scan_number(Cur *c)
{
    const char *p = c->p, *end = c->end;
    if (p < end && *p == '-')
        p++;
    if (p >= end)
        return -1;
    if (*p == '0')
        p++;
    else if (*p >= '1' && *p <= '9')
        while (p < end && is_digit(*p))
            p++;
    else
        return -1;
    if (p < end && *p == '.') {
        p++;
        if (p >= end || !is_digit(*p))
            return -1;
        while (p < end && is_digit(*p))
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (p >= end || !is_digit(*p))
            return -1;
        while (p < end && is_digit(*p))
            p++;
    }
    c->p = p;
    return 0;
}

static int
scan_literal(Cur *c, const char *word, Py_ssize_t n)
{
    if (c->end - c->p < n || memcmp(c->p, word, n) != 0)
        return -1;
    c->p += n;
    return 0;
}

/* What an event object says about its key. */
enum { ABSENT = 0, STRING, NUL, OTHER };

typedef struct {
    int kind;
    const char *s;
    Py_ssize_t n;
} Field;

/* Fields the key depends on: "ev", then the instrument candidates. */
enum { F_EV = 0, F_SYM, F_PAIR, F_T, F_P, NFIELDS };

static int
field_index(const char *s, Py_ssize_t n)
{
    switch (n) {
    case 1:
        return s[0] == 'T' ? F_T : s[0] == 'p' ? F_P : -1;
    case 2:
        return s[0] == 'e' && s[1] == 'v' ? F_EV : -1;
    case 3:
        return s[0] == 's' && s[1] == 'y' && s[2] == 'm' ? F_SYM : -1;
    case 4:
        return s[0] == 'p' && s[1] == 'a' && s[2] == 'i' && s[3] == 'r' ? F_PAIR : -1;
    default:
        return -1;
    }
}

/* After a member of an array or object: 1 at its `close` (taken), 0 after a
 * comma (taken, with the blanks after it), -1 for anything else. */
static inline int
next_member(Cur *c, char close)
{
    skip_ws(c);
    if (c->p >= c->end)
        return -1;
    if (*c->p == close) {
        c->p++;
        return 1;
    }
    if (*c->p != ',')
        return -1;
    c->p++;
    skip_ws(c);
    return 0;
}

static int scan_value(Cur *c, int depth);

/* An object. With `fields` (an event, at depth 1), the fields its key
 * depends on are noted; a repeated one fails (msgspec's rules decide). */
static int
scan_object(Cur *c, int depth, Field *fields)
{
    const char *s;
    Py_ssize_t n;
    if (fields != NULL)
        memset(fields, 0, NFIELDS * sizeof(Field));
    c->p++; /* { */
    skip_ws(c);
    if (c->p < c->end && *c->p == '}') {
        c->p++;
        return 0;
    }
    for (;;) {
        if (c->p >= c->end || *c->p != '"' || scan_string(c, &s, &n) < 0)
            return -1;
        int f = fields != NULL ? field_index(s, n) : -1;
        skip_ws(c);
        if (c->p >= c->end || *c->p != ':')
            return -1;
        c->p++;
        skip_ws(c);
        if (c->p >= c->end)
            return -1;
        if (f >= 0) {
            Field *field = &fields[f];
            if (field->kind != ABSENT)
                return -1;
            if (*c->p == '"') {
                field->kind = STRING;
                if (scan_string(c, &field->s, &field->n) < 0)
                    return -1;
            } else if (*c->p == 'n') {
                field->kind = NUL;
                if (scan_literal(c, "null", 4) < 0)
                    return -1;
            } else {
                field->kind = OTHER;
                if (scan_value(c, depth + 1) < 0)
                    return -1;
            }
        } else if (scan_value(c, depth + 1) < 0) {
            return -1;
        }
        int end = next_member(c, '}');
        if (end != 0)
            return end < 0 ? -1 : 0;
    }
}

static int
scan_array(Cur *c, int depth)
{
    c->p++; /* [ */
    skip_ws(c);
    if (c->p < c->end && *c->p == ']') {
        c->p++;
        return 0;
    }
    for (;;) {
        if (scan_value(c, depth + 1) < 0)
            return -1;
        int end = next_member(c, ']');
        if (end != 0)
            return end < 0 ? -1 : 0;
    }
}

static int
scan_value(Cur *c, int depth)
{
    const char *s;
    Py_ssize_t n;
    if (c->p >= c->end || depth > MAX_DEPTH)
        return -1;
    switch (*c->p) {
    case '"':
        return scan_string(c, &s, &n);
    case '{':
        return scan_object(c, depth, NULL);
    case '[':
        return scan_array(c, depth);
    case 't':
        return scan_literal(c, "true", 4);
    case 'f':
        return scan_literal(c, "false", 5);
    case 'n':
        return scan_literal(c, "null", 4);
    default:
        return scan_number(c);
    }
}

/* The instrument field of each known code (models/routing.py INSTRUMENT_FIELDS);
 * F_EV stands for "none" (status). */
typedef struct {
    const char *ev;
    int field;
} Known;

static const Known KNOWN[] = {
    {"T", F_SYM},     {"Q", F_SYM},     {"A", F_SYM},    {"AM", F_SYM},   {"FMV", F_SYM},
    {"LV", F_SYM},    {"LULD", F_T},    {"NOI", F_T},    {"V", F_T},      {"C", F_P},
    {"CA", F_PAIR},   {"CAS", F_PAIR},  {"XT", F_PAIR},  {"XQ", F_PAIR},  {"XA", F_PAIR},
    {"XAS", F_PAIR},  {"XL2", F_PAIR},  {"status", F_EV}, {NULL, 0},
};

static const char *const FIELD_NAMES[NFIELDS] = {NULL, "sym", "pair", "T", "p"};

/* -1: unknown code; else the field (F_EV: none). */
static int
known_field(const char *s, Py_ssize_t n)
{
    for (const Known *k = KNOWN; k->ev != NULL; k++)
        if ((Py_ssize_t)strlen(k->ev) == n && memcmp(k->ev, s, n) == 0)
            return k->field;
    return -1;
}

static PyObject *
ascii_str(const char *s, Py_ssize_t n)
{
    PyObject *str = PyUnicode_New(n, 127);
    if (str != NULL)
        memcpy(PyUnicode_1BYTE_DATA(str), s, n);
    return str;
}

/* Instrument names seen lately, by a hash of their bytes: a repeated name
 * reuses its str, whose hash is kept inside it, so the index lookup neither
 * allocates nor hashes. Direct-mapped: a collision replaces the slot. */
#define CACHE_SLOTS 4096
#define CACHE_MAX_LEN 64
static PyObject *str_cache[CACHE_SLOTS];

/* A new reference to the str of (s, n), ASCII. */
static PyObject *
cached_str(const char *s, Py_ssize_t n)
{
    if (n > CACHE_MAX_LEN)
        return ascii_str(s, n);
    uint32_t h = 2166136261u;
    for (Py_ssize_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    PyObject **slot = &str_cache[(h ^ (h >> 16)) & (CACHE_SLOTS - 1)];
    PyObject *hit = *slot;
    if (hit != NULL && PyUnicode_GET_LENGTH(hit) == n &&
        memcmp(PyUnicode_1BYTE_DATA(hit), s, n) == 0) {
        Py_INCREF(hit);
        return hit;
    }
    PyObject *str = ascii_str(s, n);
    if (str == NULL)
        return NULL;
    if (PyObject_Hash(str) == -1) {
        Py_DECREF(str);
        return NULL;
    }
    Py_INCREF(str);
    Py_XSETREF(*slot, str);
    return str;
}

/* The index of the entry of code (s, n), made on first sight in this frame; -1: error. */
static Py_ssize_t
entry_for(State *st, const char *s, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < st->nevs; i++) {
        PyObject *ev = st->evs[i].ev;
        if (PyUnicode_GET_LENGTH(ev) == n && memcmp(PyUnicode_1BYTE_DATA(ev), s, n) == 0)
            return i;
    }
    PyObject *ev = ascii_str(s, n);
    if (ev == NULL)
        return -1;
    Py_ssize_t index = state_add_ev(st, ev);
    if (index >= 0)
        st->evs[index].field = known_field(s, n);
    return index;
}

static PyObject *
check_index(PyObject *wild, PyObject *specific, PyObject *events_in, PyObject *events_out)
{
    if (!PyDict_Check(wild) || !PyDict_Check(specific) || !PyDict_Check(events_in) ||
        !PyDict_Check(events_out)) {
        PyErr_SetString(PyExc_TypeError, "route: the index and the counters must be dicts");
        return NULL;
    }
    return Py_None;
}

static PyObject *
fanout_route(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "route(frame, wild, specific, events_in, events_out)");
        return NULL;
    }
    PyObject *frame = args[0];
    if (!PyBytes_CheckExact(frame))
        Py_RETURN_NONE;
    if (check_index(args[1], args[2], args[3], args[4]) == NULL)
        return NULL;
    const char *base = PyBytes_AS_STRING(frame);
    Cur c = {base, base + PyBytes_GET_SIZE(frame)};
    /* One pass: spans go to the sinks as the frame is scanned; nothing is handed
     * on before the end, so a frame found not plain halfway is simply forgotten. */
    State st;
    state_init(&st, args[1], args[2]);
    Py_ssize_t last = -1;
    Field fields[NFIELDS];
    Py_ssize_t events = 0;
    skip_ws(&c);
    if (c.p >= c.end || *c.p != '[')
        Py_RETURN_NONE;
    c.p++; /* [ */
    skip_ws(&c);
    if (c.p < c.end && *c.p == ']') {
        c.p++;
        goto end;
    }
    for (;;) {
        const char *start = c.p;
        const char *ev_s = "";
        Py_ssize_t ev_n = 0;
        const Field *inst = NULL;
        if (c.p >= c.end)
            goto plain;
        int is_object = *c.p == '{';
        if (is_object) {
            if (scan_object(&c, 1, fields) < 0)
                goto plain;
            if (fields[F_EV].kind == STRING) {
                ev_s = fields[F_EV].s;
                ev_n = fields[F_EV].n;
            }
        } else if (scan_value(&c, 1) < 0) {
            goto plain;
        }
        if (last < 0 || PyUnicode_GET_LENGTH(st.evs[last].ev) != ev_n ||
            memcmp(PyUnicode_1BYTE_DATA(st.evs[last].ev), ev_s, ev_n) != 0) {
            last = entry_for(&st, ev_s, ev_n);
            if (last < 0)
                goto fail;
        }
        EvEntry *e = &st.evs[last];
        if (is_object) {
            int field = e->field; /* -1 for "" (no ev, or not a string) */
            int tagged = 0;
            if (field == F_EV) {
                tagged = 1; /* status: no instrument */
            } else if (field > 0) {
                int kind = fields[field].kind;
                if (kind == STRING) {
                    inst = &fields[field];
                    tagged = 1;
                } else if (kind == ABSENT || kind == NUL) {
                    tagged = 1;
                }
            }
            if (!tagged) { /* the loose key: the first string among sym, pair, T */
                if (fields[F_SYM].kind == STRING)
                    inst = &fields[F_SYM];
                else if (fields[F_PAIR].kind == STRING)
                    inst = &fields[F_PAIR];
                else if (fields[F_T].kind == STRING)
                    inst = &fields[F_T];
            }
        }
        Py_ssize_t len = c.p - start;
        PyObject *instrument = NULL;
        if (inst != NULL && e->by_ticker != NULL) {
            instrument = cached_str(inst->s, inst->n);
            if (instrument == NULL)
                goto fail;
        }
        int routed = route_event(&st, e, instrument, start, len);
        Py_XDECREF(instrument);
        if (routed < 0)
            goto fail;
        events++;
        int more = next_member(&c, ']');
        if (more < 0)
            goto plain;
        if (more > 0)
            break;
    }
end:
    skip_ws(&c);
    if (c.p != c.end)
        goto plain;
    return state_finish(&st, frame, base, PyBytes_GET_SIZE(frame), events, args[3], args[4]);
plain: /* not plain JSON: msgspec decides */
    state_release(&st);
    Py_RETURN_NONE;
fail:
    state_release(&st);
    return NULL;
}

static PyObject *
fanout_route_parts(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 8) {
        PyErr_SetString(PyExc_TypeError,
                        "route_parts(frame, evs, instruments, raws, wild, specific, events_in, "
                        "events_out)");
        return NULL;
    }
    PyObject *frame = args[0], *evs = args[1], *insts = args[2], *raws = args[3];
    if (!PyList_CheckExact(evs) || !PyList_CheckExact(insts) || !PyList_CheckExact(raws)) {
        PyErr_SetString(PyExc_TypeError, "route_parts: evs, instruments and raws must be lists");
        return NULL;
    }
    Py_ssize_t events = PyList_GET_SIZE(raws);
    if (PyList_GET_SIZE(evs) != events || PyList_GET_SIZE(insts) != events) {
        PyErr_SetString(PyExc_ValueError, "route_parts: the three lists differ in length");
        return NULL;
    }
    if (check_index(args[4], args[5], args[6], args[7]) == NULL)
        return NULL;
    State st;
    state_init(&st, args[4], args[5]);
    Py_buffer *views = PyMem_Calloc(events ? events : 1, sizeof(Py_buffer));
    if (views == NULL)
        return PyErr_NoMemory();
    Py_ssize_t held = 0;
    PyObject *result = NULL;
    for (Py_ssize_t i = 0; i < events; i++) {
        PyObject *ev = PyList_GET_ITEM(evs, i);
        PyObject *inst = PyList_GET_ITEM(insts, i);
        if (!PyUnicode_Check(ev) || (inst != Py_None && !PyUnicode_Check(inst))) {
            PyErr_SetString(PyExc_TypeError, "route_parts: evs are str, instruments str or None");
            goto done;
        }
        if (PyObject_GetBuffer(PyList_GET_ITEM(raws, i), &views[i], PyBUF_SIMPLE) < 0)
            goto done;
        held++;
        Py_ssize_t index = -1;
        for (Py_ssize_t j = 0; j < st.nevs; j++) {
            int eq = PyUnicode_Compare(st.evs[j].ev, ev);
            if (eq == -1 && PyErr_Occurred())
                goto done;
            if (eq == 0) {
                index = j;
                break;
            }
        }
        if (index < 0) {
            Py_INCREF(ev);
            index = state_add_ev(&st, ev);
            if (index < 0)
                goto done;
        }
        if (route_event(&st, &st.evs[index], inst == Py_None ? NULL : inst, views[i].buf, views[i].len) < 0)
            goto done;
    }
    if (PyBytes_Check(frame))
        result = state_finish(&st, frame, PyBytes_AS_STRING(frame), PyBytes_GET_SIZE(frame),
                              events, args[6], args[7]);
    else
        result = state_finish(&st, frame, NULL, 0, events, args[6], args[7]);
done:
    if (result == NULL)
        state_release(&st);
    for (Py_ssize_t i = 0; i < held; i++)
        PyBuffer_Release(&views[i]);
    PyMem_Free(views);
    return result;
}

/* ----------------------------------------------- WebSocket frame headers */

static inline Py_ssize_t
header_size(Py_ssize_t n)
{
    return n < 126 ? 2 : n < 65536 ? 4 : 10;
}

static inline char *
put_header(char *out, Py_ssize_t n)
{
    *out++ = (char)0x81; /* FIN, text */
    if (n < 126) {
        *out++ = (char)n;
    } else if (n < 65536) {
        *out++ = 126;
        *out++ = (char)(n >> 8);
        *out++ = (char)n;
    } else {
        *out++ = 127;
        for (int shift = 56; shift >= 0; shift -= 8)
            *out++ = (char)((unsigned long long)n >> shift);
    }
    return out;
}

/* ------------------------------------------------------------ send_all */

static PyObject *str_sink, *str_is_closing, *str_get_write_buffer_size;

/* 1: the transport is open and holds nothing (a direct send keeps the byte
 * order); 0: not; -1: an error raised by its methods. */
static int
transport_idle(PyObject *transport)
{
    PyObject *closing = PyObject_CallMethodNoArgs(transport, str_is_closing);
    if (closing == NULL)
        return -1;
    int is_closing = PyObject_IsTrue(closing);
    Py_DECREF(closing);
    if (is_closing != 0)
        return is_closing < 0 ? -1 : 0;
    PyObject *size = PyObject_CallMethodNoArgs(transport, str_get_write_buffer_size);
    if (size == NULL)
        return -1;
    Py_ssize_t held = PyLong_AsSsize_t(size);
    Py_DECREF(size);
    if (held == -1 && PyErr_Occurred())
        return -1;
    return held == 0;
}

/* Send one attached sink's buffer; NULL if all of it went, else the bytes
 * that did not (a full socket buffer, or an error the transport will meet
 * and report when it writes them), or NULL with an exception set. The
 * buffer is empty afterwards either way; its frames count as sent. */
static PyObject *
sink_send(SinkObject *k, int *whole)
{
    Py_ssize_t n;
    do {
        n = send(k->fd, k->buf, (size_t)k->len, MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        n = 0;
    PyObject *rest = NULL;
    *whole = n == k->len;
    if (!*whole) {
        rest = PyBytes_FromStringAndSize(k->buf + n, k->len - n);
        if (rest == NULL) {
            if (n > 0) { /* out of memory: keep the unsent tail, whole, never dropped */
                memmove(k->buf, k->buf + n, (size_t)(k->len - n));
                k->len -= n;
                k->recs[0].size = k->len;
                k->recs[0].events = -1;
                k->nrecs = 1;
                k->events = 0;
            }
            return NULL;
        }
    }
    k->sent_frames += (unsigned long long)k->nrecs;
    k->sent_events += (unsigned long long)k->events;
    k->sent_bytes += (unsigned long long)k->len;
    sink_empty(k, k->len);
    return rest;
}

static int
leave(PyObject *left, PyObject *session, PyObject *rest)
{
    PyObject *pair = PyTuple_Pack(2, session, rest);
    if (pair == NULL)
        return -1;
    int rc = PyList_Append(left, pair);
    Py_DECREF(pair);
    return rc;
}

static PyObject *
fanout_send_all(PyObject *module, PyObject *sessions)
{
    PyObject *it = PyObject_GetIter(sessions);
    if (it == NULL)
        return NULL;
    PyObject *left = PyList_New(0);
    if (left == NULL) {
        Py_DECREF(it);
        return NULL;
    }
    PyObject *session;
    while ((session = PyIter_Next(it)) != NULL) {
        PyObject *sink = PyObject_GetAttr(session, str_sink);
        if (sink == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_AttributeError))
                goto error;
            PyErr_Clear(); /* no sink: the caller's path */
            sink = Py_NewRef(Py_None);
        }
        int rc = 0;
        if (!PyObject_TypeCheck(sink, &SinkType) || ((SinkObject *)sink)->fd < 0) {
            rc = leave(left, session, Py_None);
        } else {
            SinkObject *k = (SinkObject *)sink;
            if (k->nrecs > 0) {
                int idle = transport_idle(k->transport);
                if (idle < 0) {
                    rc = -1;
                } else if (!idle) {
                    rc = leave(left, session, Py_None);
                } else {
                    int whole;
                    PyObject *rest = sink_send(k, &whole);
                    if (rest == NULL && !whole)
                        rc = -1;
                    else if (rest != NULL) {
                        rc = leave(left, session, rest);
                        Py_DECREF(rest);
                    }
                }
            }
        }
        Py_DECREF(sink);
        Py_DECREF(session);
        if (rc < 0)
            goto done;
    }
    if (PyErr_Occurred())
        goto done;
    Py_DECREF(it);
    return left;
error:
    Py_DECREF(session);
done:
    Py_DECREF(it);
    Py_DECREF(left);
    return NULL;
}

/* -------------------------------------------------------------- module */

static PyMethodDef methods[] = {
    {"route", (PyCFunction)(void (*)(void))fanout_route, METH_FASTCALL,
     "route(frame, wild, specific, events_in, events_out) -> (events, delivered, whole) | None"},
    {"route_parts", (PyCFunction)(void (*)(void))fanout_route_parts, METH_FASTCALL,
     "route_parts(frame, evs, instruments, raws, wild, specific, events_in, events_out)"},
    {"send_all", (PyCFunction)fanout_send_all, METH_O,
     "send_all(sessions) -> [(session, rest)]: write every attached, idle sink's buffer "
     "with one send(); rest is None (not attached, or its transport is closing or holds "
     "data: the caller's path) or the bytes the socket did not take."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "massivekit.proxy._fanout",
    .m_doc = "The proxy's fan-out hot path in C (see router.py).",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__fanout(void)
{
    init_tables();
    str_sink = PyUnicode_InternFromString("sink");
    str_is_closing = PyUnicode_InternFromString("is_closing");
    str_get_write_buffer_size = PyUnicode_InternFromString("get_write_buffer_size");
    if (str_sink == NULL || str_is_closing == NULL || str_get_write_buffer_size == NULL)
        return NULL;
    if (PyType_Ready(&SinkType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module_def);
    if (m == NULL)
        return NULL;
    Py_INCREF(&SinkType);
    if (PyModule_AddObject(m, "Sink", (PyObject *)&SinkType) < 0)
        goto fail;
    PyObject *fields = PyDict_New();
    if (fields == NULL)
        goto fail;
    for (const Known *k = KNOWN; k->ev != NULL; k++) {
        if (k->field == F_EV)
            continue;
        PyObject *name = PyUnicode_FromString(FIELD_NAMES[k->field]);
        if (name == NULL || PyDict_SetItemString(fields, k->ev, name) < 0) {
            Py_XDECREF(name);
            Py_DECREF(fields);
            goto fail;
        }
        Py_DECREF(name);
    }
    if (PyModule_AddObject(m, "INSTRUMENT_FIELDS", fields) < 0) {
        Py_DECREF(fields);
        goto fail;
    }
    return m;
fail:
    Py_DECREF(m);
    return NULL;
}
