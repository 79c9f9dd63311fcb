-- The store's records, one row per key, in byte order (bytea compares
-- bytewise, as Badger orders keys). expires_at is set for entries written
-- with a time to live; readers ignore expired rows and a periodic delete
-- removes them.
CREATE TABLE l402d_kv (
	k          bytea PRIMARY KEY,
	v          bytea NOT NULL,
	expires_at timestamptz
);
CREATE INDEX l402d_kv_expires ON l402d_kv (expires_at) WHERE expires_at IS NOT NULL;

-- Every replica keeps revocations in memory; a revocation written by any
-- of them is pushed to all on commit.
CREATE FUNCTION l402d_notify_revocation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify('l402d_revocations', encode(NEW.k, 'hex'));
	RETURN NEW;
END
$$;
CREATE TRIGGER l402d_kv_revocation AFTER INSERT OR UPDATE ON l402d_kv
	FOR EACH ROW WHEN (substring(NEW.k FROM 1 FOR 7) = 'v1/rev/'::bytea)
	EXECUTE FUNCTION l402d_notify_revocation();
