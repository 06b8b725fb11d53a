"""gunicorn settings for Usher's web process (``make run``'s Procfile and the benchmarks).

Every value can be overridden from the environment. The hooks tie the serving runtime to each
worker's life: ``post_worker_init`` loads the deployment and starts the background threads
(deployment poll, seen index, prediction-log flusher, shadow); ``worker_exit`` — reached on SIGTERM
after in-flight requests finish, and on SIGINT/SIGQUIT — stops them and flushes the prediction log
(to the database, else to the spill file) before the process exits. See docs/serving.md.
"""

import os

# One BLAS thread per worker: scoring is a matrix-vector product per request, and several workers
# each starting a thread per core would only fight over the two cores.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

wsgi_app = "recommender.serving.wsgi:application"
bind = os.environ.get("USHER_BIND", "127.0.0.1:8000").split(",")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "4"))
keepalive = int(os.environ.get("WEB_KEEPALIVE", "5"))
backlog = int(os.environ.get("WEB_BACKLOG", "2048"))
timeout = int(os.environ.get("WEB_TIMEOUT", "30"))
# Time for in-flight requests and the final prediction-log flush after SIGTERM.
graceful_timeout = int(os.environ.get("WEB_GRACEFUL_TIMEOUT", "15"))
accesslog = os.environ.get("WEB_ACCESS_LOG", "-") or None
errorlog = "-"
loglevel = os.environ.get("WEB_LOG_LEVEL", "info")
proc_name = "usher-web"


def post_worker_init(worker):
    # Runs before this worker accepts its first connection: the deployment, the seen index and the
    # start-up fallback list are loaded here, so its first /recommend answer is already a full line and
    # its /readyz is 200 from the start (docs/serving.md, "Liveness and readiness").
    import gc

    from recommender.serving.runtime import runtime_start

    runtime_start()
    # Everything loaded so far (Django, numpy, the models' indexes) lives as long as the worker: move it
    # out of the collector's reach. Measured: without this a full collection of the ~260,000 startup
    # objects paused a worker for 350 ms under load, which was the whole p99 of /recommend.
    gc.collect()
    gc.freeze()
    # Hand the GIL over every 1 ms instead of 5 ms, so a request thread is not kept waiting behind the
    # flusher's batch or a deployment load (measured: p99 35 → 23 ms and 96 → 15 ms in back-to-back runs).
    import sys

    sys.setswitchinterval(float(os.environ.get("WEB_SWITCH_INTERVAL", "0.001")))


def worker_exit(server, worker):
    from recommender.serving.runtime import runtime_stop

    result = runtime_stop()
    if result is not None:
        worker.log.info("prediction log flushed on exit: %s", result)
