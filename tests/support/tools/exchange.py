#!/usr/bin/env python3
"""Sends raw bytes over one connection to the gateway and reads until it
closes (5 s at most): for the tests that must write what no HTTP client
would send.

  exchange.py PORT REQUEST_FILE ANSWER_FILE [--tls CA CERT KEY]

Writes what came back to ANSWER_FILE and prints "closed" (the gateway ended
the connection) or "open" (still open after 5 s). With --tls, a TLS
connection with that client certificate; a TLS close without close_notify
counts as closed."""
import socket
import ssl
import sys


def main():
    port, request, answer = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    s = socket.create_connection(("127.0.0.1", port))
    if len(sys.argv) == 8 and sys.argv[4] == "--tls":
        ctx = ssl.create_default_context(cafile=sys.argv[5])
        ctx.load_cert_chain(sys.argv[6], sys.argv[7])
        s = ctx.wrap_socket(s, server_hostname="localhost")
    elif len(sys.argv) != 4:
        sys.exit(__doc__)
    with open(request, "rb") as f:
        s.sendall(f.read())
    s.settimeout(5)
    got, state = b"", "open"
    try:
        while True:
            b = s.recv(65536)
            if not b:
                state = "closed"
                break
            got += b
    except socket.timeout:
        pass
    except (ssl.SSLError, ConnectionError):
        state = "closed"
    with open(answer, "wb") as f:
        f.write(got)
    print(state)


main()
