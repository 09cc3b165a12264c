import os
import sys

from trainlab.cli import main

code = main()
if "WORLD_SIZE" in os.environ:
    # A torchrun worker whose command ended: everything it writes is written atomically and
    # flushed by now, and its process group left. Interpreter teardown still destroys gloo's
    # threads, which under load aborted a worker after a completed run ("terminate called
    # without an active exception", exit status 134); so leave without it.
    import logging

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
raise SystemExit(code)
