/* bench/_fastread.c: the load generator's socket reader for the measurement window.
 *
 * bench/_loadgen.py connects, authenticates and subscribes its clients in
 * Python, then, for the measurement, pauses every transport and hands the raw
 * socket descriptors to fr_run() (through ctypes, which releases the GIL).
 * The Python client cost ~5 us per socket read on top of the kernel's read:
 * at 1,000 clients and 50k upstream events/s that was 75-93% of the load
 * generator's core, and the latency it reported was mostly its own queueing.
 * Here a read costs the system call and a pass over the bytes.
 *
 * Per read it measures what bench/_loadgen.py's Client does, byte for byte:
 *
 *   events   the number of '{' bytes in the read. Stocks T/Q events hold no
 *            nested object, so each '{' is one event. WebSocket frames are
 *            not parsed, so a header byte equal to 0x7b counts too: a 7-bit
 *            payload length of 123, or either byte of a 16-bit extended
 *            length (one frame in 256 by its low byte). The Python reader
 *            counts the same way, and since a count of bytes does not depend
 *            on where the reads split the stream, both readers count exactly
 *            the same events on the same bytes. On the benchmark's mix the
 *            header bytes add 0.14% (measured: see Client._count).
 *   latency  for one read in sample_every per client (the client's read
 *            counter goes in and out, so the choice of reads continues the
 *            Python one), the first ',"t":' and its 13 digits, against the
 *            receive time (CLOCK_REALTIME in ms, as time.time() * 1000). A
 *            stamp cut by the end of the read gives no sample.
 *   recovery with recovery_after_ms >= 0: every read is sampled, and each
 *            client's first receive time of a stamp >= recovery_after_ms is
 *            noted; the run ends when every client has one (or is closed),
 *            or after duration_s.
 *
 * A read returning 0 or an error (peer closed, reset) drops that descriptor
 * from the set and is counted; the descriptor stays open (Python owns it). A
 * run also ends early once every descriptor is dropped.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define FR_READ_BYTES (256 * 1024)
#define FR_BATCH 256
#define FR_STAMP_DIGITS 13

static const char FR_STAMP_KEY[] = ",\"t\":";

/* What one run added up; the caller's structure (ctypes), zeroed here. */
typedef struct {
    long long events;    /* '{' bytes read */
    long long reads;     /* reads that returned data */
    long long bytes;     /* bytes read */
    long long closed;    /* descriptors dropped: EOF, error, or not pollable */
    long long samples;   /* latency samples written */
    long long recovered; /* clients that saw a stamp >= recovery_after_ms */
} fr_totals;

static double monotonic_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double unix_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* The '{' bytes in data[0:size], eight at a time (exact: no false positives).
 * Python's bytes.count(b"{") gives the same number. */
static long long count_braces(const unsigned char *data, size_t size) {
    const uint64_t ones = 0x0101010101010101ULL, low7 = 0x7f7f7f7f7f7f7f7fULL;
    const uint64_t pattern = ones * '{';
    long long total = 0;
    size_t i = 0;
    for (; i + 8 <= size; i += 8) {
        uint64_t word;
        memcpy(&word, data + i, 8);
        word ^= pattern; /* a '{' byte is now zero */
        /* High bit of each byte set when that byte is non-zero. */
        uint64_t nonzero = (((word & low7) + low7) | word) & ~low7;
        uint64_t zeros = (~nonzero & ~low7) >> 7; /* 1 in each zero byte */
        total += (long long)((zeros * ones) >> 56);
    }
    for (; i < size; i++)
        total += data[i] == '{';
    return total;
}

/* The first event stamp of a read (Unix ms), or -1 when there is none whole. */
static long long first_stamp(const unsigned char *data, size_t size) {
    const unsigned char *key = memmem(data, size, FR_STAMP_KEY, sizeof FR_STAMP_KEY - 1);
    if (key == NULL)
        return -1;
    const unsigned char *digits = key + sizeof FR_STAMP_KEY - 1;
    if ((size_t)(data + size - digits) < FR_STAMP_DIGITS)
        return -1; /* cut by the end of the read */
    long long stamp = 0;
    for (int k = 0; k < FR_STAMP_DIGITS; k++) {
        if (digits[k] < '0' || digits[k] > '9')
            return -1;
        stamp = stamp * 10 + (digits[k] - '0');
    }
    return stamp;
}

/* Run the reader over fds[0:n] (see the head of this file).
 *
 * events[n], reads[n]: each client's event count and read counter, added to.
 * samples[capacity]:   latency samples in ms, written from the start.
 * recovered[n]:        recovery mode only (else may be NULL): the receive time
 *                      (Unix ms) of each client's first stamp at/after
 *                      recovery_after_ms, -1 for none.
 * Returns 0, or -1 with errno when epoll itself failed.
 */
int fr_run(const int *fds, int n, double duration_s, int sample_every,
           long long recovery_after_ms, long long *events, long long *reads, double *samples,
           long long capacity, double *recovered, fr_totals *totals) {
    const int recovery = recovery_after_ms >= 0;
    memset(totals, 0, sizeof *totals);
    if (recovery)
        for (int i = 0; i < n; i++)
            recovered[i] = -1.0;
    unsigned char *buffer = malloc(FR_READ_BYTES);
    int poll = epoll_create1(EPOLL_CLOEXEC);
    if (buffer == NULL || poll < 0) {
        int saved = buffer == NULL ? ENOMEM : errno;
        free(buffer);
        if (poll >= 0)
            close(poll);
        errno = saved;
        return -1;
    }
    int open = 0, pending = 0; /* pending: neither recovered nor dropped */
    for (int i = 0; i < n; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        if (fds[i] >= 0 && epoll_ctl(poll, EPOLL_CTL_ADD, fds[i], &ev) == 0) {
            open++;
            pending++;
        } else {
            totals->closed++;
        }
    }
    struct epoll_event ready[FR_BATCH];
    const double deadline = monotonic_s() + duration_s;
    int rc = 0;
    while (open > 0 && !(recovery && pending == 0)) {
        double left = deadline - monotonic_s();
        if (left <= 0)
            break;
        int count = epoll_wait(poll, ready, FR_BATCH, (int)(left * 1000.0) + 1);
        if (count < 0) {
            if (errno == EINTR)
                continue;
            rc = -1;
            break;
        }
        for (int r = 0; r < count; r++) {
            int i = (int)ready[r].data.u32;
            ssize_t got = read(fds[i], buffer, FR_READ_BYTES);
            if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
                continue;
            if (got <= 0) { /* closed by the peer, or broken: drop it, keep going */
                epoll_ctl(poll, EPOLL_CTL_DEL, fds[i], NULL);
                open--;
                totals->closed++;
                if (!recovery || recovered[i] < 0)
                    pending--;
                continue;
            }
            long long found = count_braces(buffer, (size_t)got);
            events[i] += found;
            totals->events += found;
            totals->reads++;
            totals->bytes += got;
            reads[i]++;
            if (!recovery && (sample_every <= 0 || reads[i] % sample_every != 0))
                continue;
            long long stamp = first_stamp(buffer, (size_t)got);
            if (stamp < 0)
                continue;
            double now = unix_ms();
            if (totals->samples < capacity)
                samples[totals->samples++] = now - (double)stamp;
            if (recovery && stamp >= recovery_after_ms && recovered[i] < 0) {
                recovered[i] = now;
                totals->recovered++;
                pending--;
            }
        }
    }
    int saved = errno;
    close(poll);
    free(buffer);
    errno = saved;
    return rc;
}
