-- API tokens belong to the account that created them through the API or
-- the web UI: such a token acts with at most its owner's current role and
-- is deleted with the account. A token without an owner (NULL) is a
-- service token, made with the local CLI on the server.
--
-- The column is a foreign key with ON DELETE CASCADE (DeleteAccount also
-- deletes the owner's tokens explicitly, so a backend without cascades
-- keeps the rule). It compares names ignoring case, like accounts.name.

ALTER TABLE api_tokens ADD COLUMN owner TEXT COLLATE NOCASE
    REFERENCES accounts (name) ON DELETE CASCADE ON UPDATE CASCADE;

CREATE INDEX api_tokens_owner ON api_tokens (owner);

-- Tokens made before this version recorded only their creator. One made
-- from a web session ("web:NAME") belongs to that account if it still
-- exists; if the account is gone, the token is revoked (with an audit
-- event), as removing the account would now do. One made with another
-- token ("api:TOKEN") belongs to that token's owner, if it has one. CLI
-- tokens, and tokens made with a service token, stay service tokens.

UPDATE api_tokens SET owner = (SELECT a.name FROM accounts a WHERE a.name = substr(api_tokens.created_by, 5))
    WHERE created_by LIKE 'web:%';

INSERT INTO audit_events (at, actor_kind, actor_name, action, target, detail)
    SELECT CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER), 'system', 'migration',
           'token.revoke', name, 'created by ' || created_by || ', an account that no longer exists: tokens now end with their account'
    FROM api_tokens WHERE created_by LIKE 'web:%' AND owner IS NULL;

DELETE FROM api_tokens WHERE created_by LIKE 'web:%' AND owner IS NULL;

UPDATE api_tokens SET owner = (SELECT t.owner FROM api_tokens t WHERE t.name = substr(api_tokens.created_by, 5))
    WHERE created_by LIKE 'api:%' AND owner IS NULL;
