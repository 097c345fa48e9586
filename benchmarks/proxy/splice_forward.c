/* The benchmark's "C splice" peer: the simplest zero-copy TCP forwarder, as a ceiling for chaoslab's
 * splice path in the same harness. Linux only. Usage: splice_forward LISTEN_PORT UPSTREAM_PORT
 * (127.0.0.1 only). One thread per direction of each connection, blocking splice() through a 1 MiB
 * pipe; when either direction ends, both sockets are shut down and the last thread closes them. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

struct connection {
    int client, upstream;
    atomic_int threads;
};

struct direction {
    struct connection *conn;
    int from, to;
};

static int upstream_port;

static void release(struct connection *conn) {
    shutdown(conn->client, SHUT_RDWR);
    shutdown(conn->upstream, SHUT_RDWR);
    if (atomic_fetch_sub(&conn->threads, 1) == 1) {
        close(conn->client);
        close(conn->upstream);
        free(conn);
    }
}

static void *forward(void *arg) {
    struct direction dir = *(struct direction *)arg;
    free(arg);
    int pipe_fds[2];
    if (pipe(pipe_fds) == 0) {
        fcntl(pipe_fds[1], F_SETPIPE_SZ, 1 << 20);
        for (;;) {
            ssize_t in = splice(dir.from, NULL, pipe_fds[1], NULL, 1 << 20, SPLICE_F_MOVE);
            if (in <= 0) break;
            while (in > 0) {
                ssize_t out = splice(pipe_fds[0], NULL, dir.to, NULL, (size_t)in, SPLICE_F_MOVE);
                if (out <= 0) goto done;
                in -= out;
            }
        }
    done:
        close(pipe_fds[0]);
        close(pipe_fds[1]);
    }
    release(dir.conn);
    return NULL;
}

static void start(struct connection *conn, int from, int to) {
    struct direction *dir = malloc(sizeof *dir);
    dir->conn = conn;
    dir->from = from;
    dir->to = to;
    pthread_t thread;
    pthread_create(&thread, NULL, forward, dir);
    pthread_detach(thread);
}

static struct sockaddr_in loopback(int port) {
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
    return address;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s LISTEN_PORT UPSTREAM_PORT\n", argv[0]);
        return 2;
    }
    upstream_port = atoi(argv[2]);
    int listener = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in address = loopback(atoi(argv[1]));
    if (bind(listener, (struct sockaddr *)&address, sizeof address) || listen(listener, 2048)) {
        perror("listen");
        return 1;
    }
    for (;;) {
        int client = accept(listener, NULL, NULL);
        if (client < 0) continue;
        int upstream = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in target = loopback(upstream_port);
        if (connect(upstream, (struct sockaddr *)&target, sizeof target)) {
            close(client);
            close(upstream);
            continue;
        }
        setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setsockopt(upstream, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct connection *conn = malloc(sizeof *conn);
        conn->client = client;
        conn->upstream = upstream;
        atomic_init(&conn->threads, 2);
        start(conn, client, upstream);
        start(conn, upstream, client);
    }
}
