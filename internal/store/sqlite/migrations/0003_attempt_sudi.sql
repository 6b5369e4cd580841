-- What became of the SUDI_DATA a phone sent in an attempt ("verified",
-- "not verified: unknown issuer", "ignored (sudi_verification off)", …);
-- '' when it sent none. Earlier attempts have ''.
ALTER TABLE attempts ADD COLUMN sudi TEXT NOT NULL DEFAULT '';
