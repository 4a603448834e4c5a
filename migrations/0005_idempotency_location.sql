-- The Location header of a kept answer (a 201's), so that a replay repeats it.
alter table idempotency_keys add column location text;
