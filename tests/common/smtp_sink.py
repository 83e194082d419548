"""A real SMTP server for the mail tests (aiosmtpd).

Usage: python3 smtp_sink.py HOST PORT DIR [DELAY]

Every message received is written, exactly as sent, to DIR/NNNNNN.eml
(written to a temporary name first, then renamed, so a reader never sees half
a message). Prints "ready" once it accepts connections, and exits when its
standard input is closed, so it never outlives the test that started it.
With DELAY (seconds), it waits that long before accepting each message: a
slow server, for tests of what happens while a delivery is in flight.
"""

import asyncio
import os
import sys
import threading

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, directory, delay):
        self.directory = directory
        self.delay = delay
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
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
    host, port, directory = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    delay = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
    os.makedirs(directory, exist_ok=True)
    controller = Controller(Sink(directory, delay), hostname=host, port=port)
    controller.start()
    print("ready", flush=True)
    try:
        sys.stdin.read()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
