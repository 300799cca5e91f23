-- Resource Selection searches names, platforms and addresses by substring among tens of
-- thousands of resources: trigram indexes let `lower(x) LIKE '%term%'` use an index.
-- pg_trgm ships with PostgreSQL and is a trusted extension (PostgreSQL 13+): a database
-- owner may create it.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX resources_name_trgm_idx ON resources USING gin (lower(name) gin_trgm_ops);
CREATE INDEX resources_platform_trgm_idx ON resources USING gin (lower(platform) gin_trgm_ops);
CREATE INDEX resources_address_trgm_idx ON resources USING gin (lower(address) gin_trgm_ops);
