# Picks, per decode kernel, the prefetch (MiB) with the least summed graph time relative to PDL off.
import json, sys, glob, re
runs = {}
for f in sorted(glob.glob(sys.argv[1] + '/bench-sweep-*.json')):
    pf = re.search(r'bench-sweep-([^-]+)-', f).group(1)
    runs.setdefault(pf, []).append(json.load(open(f))['linear'])
rows = {'stream': [(2, 'INT8 W8A8 (+act quant)')], 'w8a8mma': [(16, 'INT8 W8A8 (+act quant)')],
        'wo2': [(2, 'INT8 weight-only'), (16, 'INT8 weight-only')],
        'wo3': [(2, 'FP8 weight-only'), (16, 'FP8 weight-only')], 'fp8': [(2, 'FP8 cuBLASLt (+input quant)')]}
def t(run, model, m, path):
    return [r for r in run if r['model'] == model and r['m'] == m and r['path'] == path][0]['timing']['graphMilliseconds']
def mean_t(pf, model, m, path):
    v = [t(run, model, m, path) for run in runs[pf]]
    return sum(v) / len(v)
choice = {}
for kern, rr in rows.items():
    best = None
    for pf in runs:
        if pf == 'off': continue
        score = sum(mean_t(pf, mo, m, p) / mean_t('off', mo, m, p) for mo in ('5B', '14B') for (m, p) in rr)
        print(kern, pf, '%.4f' % score, file=sys.stderr)
        if best is None or score < best[0]: best = (score, pf)
    choice[kern] = best[1]
print(','.join('%s=%s' % kv for kv in choice.items()))
