-- Querying a sweep dataset with DuckDB. Every query below runs in CI
-- (interop/duckdb) against the dataset of studies/seed-moe.toml written to
-- results/seed-moe; a query with a "same as:" line must print exactly what
-- that sweep command prints (with --format csv), row for row.

-- name: rows-by-status
SELECT status, count(*) AS rows
FROM 'results/seed-moe/*.parquet'
GROUP BY status
ORDER BY status;

-- name: best-latency
-- same as: sweep best results/seed-moe --by latency_s --min --top 5
SELECT point_id, num_experts, moe_ffn_scaling, batch_size, top_k, latency_s
FROM 'results/seed-moe/*.parquet'
WHERE status = 'ok'
ORDER BY latency_s, point_id
LIMIT 5;

-- name: best-throughput-where
-- same as: sweep best results/seed-moe --by tokens_per_s --max --where 'batch_size >= 128 && moe_ffn_scaling == "compute"' --top 5
SELECT point_id, num_experts, moe_ffn_scaling, batch_size, top_k, tokens_per_s
FROM 'results/seed-moe/*.parquet'
WHERE status = 'ok' AND batch_size >= 128 AND moe_ffn_scaling = 'compute'
ORDER BY tokens_per_s DESC, point_id
LIMIT 5;

-- name: pareto
-- same as: sweep pareto results/seed-moe --min latency_s --min params_layer --max tokens_per_s
WITH ok AS (SELECT * FROM 'results/seed-moe/*.parquet' WHERE status = 'ok')
SELECT a.point_id, a.num_experts, a.moe_ffn_scaling, a.batch_size, a.top_k,
       a.latency_s, a.params_layer, a.tokens_per_s
FROM ok a
WHERE NOT EXISTS (
  SELECT 1 FROM ok b
  WHERE b.latency_s <= a.latency_s AND b.params_layer <= a.params_layer
    AND b.tokens_per_s >= a.tokens_per_s
    AND (b.latency_s < a.latency_s OR b.params_layer < a.params_layer
         OR b.tokens_per_s > a.tokens_per_s))
ORDER BY a.latency_s, a.params_layer, a.tokens_per_s DESC, a.point_id;

-- name: mean-per-scaling-and-experts
SELECT moe_ffn_scaling, num_experts,
       avg(latency_s) AS mean_latency_s, avg(tokens_per_s) AS mean_tokens_per_s
FROM 'results/seed-moe/*.parquet'
WHERE status = 'ok'
GROUP BY moe_ffn_scaling, num_experts
ORDER BY moe_ffn_scaling, num_experts;

-- name: study-text
SELECT DISTINCT decode(value) AS study
FROM parquet_kv_metadata('results/seed-moe/*.parquet')
WHERE key = 'sweep.study';
