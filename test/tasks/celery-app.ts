// The Python side of the Celery test, written into a temp dir by the test: a Celery app with a few
// tasks (configured from the environment: broker URL, result backend, queue, marks dir) and a caller
// script that runs one scenario and prints its outcome as JSON. Celery itself is unmodified.

export const tasksPy = `
import os, time
from celery import Celery

app = Celery('espresso_check', broker=os.environ['BROKER_URL'], backend=os.environ['RESULT_BACKEND'])
app.conf.update(
    task_default_queue=os.environ['TASK_QUEUE'],
    worker_prefetch_multiplier=1,
    worker_hijack_root_logger=False,
)
WORKER = os.environ.get('WORKER_NAME', 'caller')
MARKS = os.environ['MARK_DIR']


def mark(name):
    with open(os.path.join(MARKS, name), 'a') as f:
        f.write('%s %d\\n' % (WORKER, os.getpid()))


@app.task
def add(x, y):
    return x + y


@app.task
def tsum(values):
    return sum(values)


@app.task(bind=True, max_retries=5)
def flaky(self, key, failures):
    mark('flaky-%s' % key)
    if self.request.retries < failures:
        raise self.retry(countdown=1)
    return {'retries': self.request.retries, 'worker': WORKER}


@app.task(bind=True, acks_late=True)
def slow(self, key, seconds):
    mark('started-%s-%s' % (key, WORKER))
    time.sleep(seconds)
    return {'worker': WORKER, 'redelivered': bool(self.request.delivery_info.get('redelivered'))}
`;

export const callerPy = `
import json, sys, time
from celery import chord, group
from tasks import add, flaky, slow, tsum

scenario = sys.argv[1]
t0 = time.time()
if scenario == 'delay':
    out = add.delay(2, 3).get(timeout=30)
elif scenario == 'group':
    out = group([add.s(i, i) for i in range(10)])().get(timeout=30)
elif scenario == 'chord':
    out = chord([add.s(i, i) for i in range(5)])(tsum.s()).get(timeout=30)
elif scenario == 'retry':
    out = flaky.delay(sys.argv[2], 2).get(timeout=30)
elif scenario == 'acks_late':
    r = slow.delay(sys.argv[2], 4)
    print('SENT ' + r.id, flush=True)
    out = r.get(timeout=60)
else:
    raise SystemExit('unknown scenario ' + scenario)
print('RESULT ' + json.dumps({'value': out, 'seconds': time.time() - t0}), flush=True)
`;
