# bench/pg-time.sh - sourced by the analyst benches: time_sql STATEMENT runs
# the statement three times in one psql session on $db (so the first run warms
# the cache, no parallel workers) and prints "wall|cpu|waited|runs": the best
# run's wall-clock ms (psql's timing), the least backend CPU ms, the best run's
# wait for a CPU, and every run as wall/CPU. CPU and wait come from
# /proc/self/schedstat read by the backend itself, so another process's load
# on this shared machine lands in "waited", not in "cpu". Needs a superuser
# (pg_read_file).
# shellcheck disable=SC2154 # db: the sourcing script's connection string
time_sql() {
    {
        echo "SET max_parallel_workers_per_gather = 0;"
        for _ in 1 2 3; do
            printf "SELECT 'S ' || pg_read_file('/proc/self/schedstat');\n\\\\timing on\n%s\n" "$1"
            printf "\\\\timing off\nSELECT 'S ' || pg_read_file('/proc/self/schedstat');\n"
        done
    } | psql -X -q -v ON_ERROR_STOP=1 "$db" -At 2>&1 |
        awk 'BEGIN { r = 0; n = 0 }
             /^S / { if (n % 2 == 0) { c0 = $2; w0 = $3 } else { cpu[r] = ($2 - c0) / 1e6; wait[r] = ($3 - w0) / 1e6; r++ } n++ }
             /^Time:/ { t[r] = $2 + 0 }
             END { b = 0; mc = cpu[0]
                   for (i = 1; i < r; i++) { if (t[i] < t[b]) b = i; if (cpu[i] < mc) mc = cpu[i] }
                   printf "%.1f|%.1f|%.1f|", t[b], mc, wait[b]
                   for (i = 0; i < r; i++) printf "%s%.0f/%.0f", i ? ", " : "", t[i], cpu[i]
                   printf "\n" }'
}
