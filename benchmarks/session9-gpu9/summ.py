import json,sys
files=sys.argv[2:]
base=sys.argv[1]
D={f:json.load(open(base%f)) for f in files}
keys=[(r['model'],r['m'],r['path']) for r in D[files[0]]['linear'] if r['path']!='bf16 cuBLASLt']
print('%-40s'%'path', ' '.join('%12s'%f for f in files))
for k in keys:
    cells=[]
    for f in files:
        r=[r for r in D[f]['linear'] if (r['model'],r['m'],r['path'])==k][0]
        t=r['timing']
        cells.append('%.2f %5.1fus'%(r['weightFractionOfCopy'], t['graphMilliseconds']*1e3))
    print('%-40s'%('%s M=%d %s'%(k[0],k[1],k[2][:24])), ' '.join('%12s'%c for c in cells))
