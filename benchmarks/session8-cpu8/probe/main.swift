import Foundation
import QuantizedLinear
import Glibc

func now() -> Double { var t = timespec(); clock_gettime(CLOCK_MONOTONIC, &t); return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9 }
func cpu() -> Double { var t = timespec(); clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t); return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9 }
func med(_ v: [Double]) -> Double { let s = v.sorted(); return s.isEmpty ? .nan : s[s.count / 2] }
@main struct Probe { static func main() throws {
let args = CommandLine.arguments
let m = Int(args[1])!, n = Int(args[2])!, k = Int(args[3])!, reps = Int(args[4])!
let rounds = args.count > 5 ? Int(args[5])! : 1
let trace = ProcessInfo.processInfo.environment["TRACE"] != nil
registerBuiltinLayouts()
let x = try Tensor.randomNormal([m, k], seed: 1)
let w = try Tensor.randomNormal([n, k], standardDeviation: 1 / Float(k).squareRoot(), seed: 2)
let q = try QuantizedTensor.fromFloat(w, layout: try BlockWiseINT8Layout.weight(blockSize: 128))
_ = try linear(x, q)
for _ in 0..<rounds {
var walls: [Double] = []
var cpus: [Double] = []
#if !NOPROBE
ProbeLog.events = []; ProbeLog.events.reserveCapacity(1 << 16)
ProbeLog.on = trace
#endif
for _ in 0..<reps {
    let (t0, c0) = (now(), cpu())
    #if !NOPROBE
    ProbeLog.mark(100)
    #endif
    _ = try linear(x, q)
    #if !NOPROBE
    ProbeLog.mark(101)
    #endif
    walls.append(now() - t0); cpus.append(cpu() - c0)
}
#if !NOPROBE
ProbeLog.on = false
#endif
let ws = walls.sorted(), cs = cpus.sorted()
print(String(format: "%d x %d x %d: wall median %.3f ms (min %.3f), process cpu median %.3f ms", m, n, k,
             ws[reps / 2] * 1e3, ws[0] * 1e3, cs[reps / 2] * 1e3))
#if !NOPROBE
if trace {
    // per call: split events between marks
    var calls: [[(region: Int, kind: Int, thread: Int, t0: UInt64, t1: UInt64)]] = []
    var cur: [(region: Int, kind: Int, thread: Int, t0: UInt64, t1: UInt64)] = []
    for e in ProbeLog.events {
        if e.region == -1 && e.kind == 100 { cur = [e] } else { cur.append(e); if e.region == -1 && e.kind == 101 { calls.append(cur) } }
    }
    // columns per region index within call
    var stats: [String: [Double]] = [:]
    func add(_ key: String, _ v: Double) { stats[key, default: []].append(v) }
    for c in calls {
        let t0 = c[0].t0
        let f = { (t: UInt64) in Double(t - t0) / 1e3 }
        add("end", f(c.last!.t0))
        var ridx: [Int: Int] = [:]
        for e in c where e.kind == 0 { ridx[e.region] = ridx.count }
        for e in c {
            guard let r = ridx[e.region] else { continue }
            if e.kind == 0 { add("r\(r) enter", f(e.t0)); add("r\(r) parts", Double(e.thread)) }
            if e.kind == 2 { add("r\(r) exit", f(e.t0)) }
        }
        for (reg, r) in ridx {
            for th in 0..<3 {
                let ps = c.filter { $0.region == reg && $0.kind == 1 && $0.thread == th }
                if ps.isEmpty { continue }
                add("r\(r) t\(th) first", f(ps.map(\.t0).min()!))
                add("r\(r) t\(th) last", f(ps.map(\.t1).max()!))
                add("r\(r) t\(th) busy", ps.map { Double($0.t1 - $0.t0) / 1e3 }.reduce(0, +))
                add("r\(r) t\(th) nparts", Double(ps.count))
            }
        }
    }
    if ProcessInfo.processInfo.environment["CALLS"] != nil {
        for c in calls.prefix(40) {
            let t0 = c[0].t0
            var line = ""
            for e in c { if e.kind == 1 { line += String(format: " [%d:%.0f-%.0f]", e.thread, Double(e.t0 - t0)/1e3, Double(e.t1 - t0)/1e3) } else { line += String(format: " <%d.%d@%.0f>", e.region < 0 ? 9 : 0, e.kind, Double(e.t0 - t0)/1e3) } }
            print(line)
        }
    }
    for key in stats.keys.sorted() { print(String(format: "  %-18@ median %8.1f us  (n=%d)", key as NSString, med(stats[key]!), stats[key]!.count)) }
}
#endif
}
}}
