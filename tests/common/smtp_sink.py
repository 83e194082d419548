"""A real SMTP server for the mail tests (aiosmtpd).

Usage: python3 smtp_sink.py HOST PORT DIR [--delay S] [--hold]
                            [--starttls | --tls] [--cert PEM --key PEM]

Every message received is written, exactly as sent, to DIR/NNNNNN.eml
(written to a temporary name first, then renamed, so a reader never sees half
a message). Prints "ready" once it accepts connections, and exits when its
standard input is closed, so it never outlives the test that started it.

--delay S   waits S seconds before accepting each message (a slow server).
--hold      prints "data" when a message's DATA begins and accepts it only
            once a line is written to its standard input: a test sees the
            delivery in flight and chooses when it ends.
--starttls  offers STARTTLS with --cert/--key, and refuses mail without it.
--tls       speaks TLS from the first byte (SMTPS) with --cert/--key.
"""

import argparse
import asyncio
import os
import ssl
import sys
import threading

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, directory, delay, gate):
        self.directory = directory
        self.delay = delay
        self.gate = gate
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.gate is not None:
            print("data", flush=True)
            await asyncio.get_running_loop().run_in_executor(None, self.gate.acquire)
        with self.lock:
            self.count += 1
            n = self.count
        path = os.path.join(self.directory, "%06d.eml" % n)
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(envelope.original_content or envelope.content)
        with open(os.path.join(self.directory, "%06d.rcpt" % n), "w") as f:
            f.write("\n".join(envelope.rcpt_tos))
        os.rename(tmp, path)
        return "250 OK"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("directory")
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--hold", action="store_true")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--starttls", action="store_true")
    mode.add_argument("--tls", action="store_true")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    args = parser.parse_args()

    os.makedirs(args.directory, exist_ok=True)
    gate = threading.Semaphore(0) if args.hold else None
    kwargs = {}
    if args.starttls or args.tls:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)
        if args.starttls:
            kwargs = {"tls_context": context, "require_starttls": True}
        else:
            kwargs = {"ssl_context": context}
    controller = Controller(
        Sink(args.directory, args.delay, gate),
        hostname=args.host,
        port=args.port,
        **kwargs,
    )
    controller.start()
    print("ready", flush=True)
    try:
        for _line in sys.stdin:
            if gate is not None:
                gate.release()
    finally:
        if gate is not None:
            for _ in range(1000):
                gate.release()
        controller.stop()


if __name__ == "__main__":
    main()
