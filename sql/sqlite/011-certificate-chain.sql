-- passtore schema, version 11 (SQLite): the issuing chain stored with a certificate
-- (public data, like the certificate): the CA certificates delivered with it that issue
-- it, in issuing order (the certificate's issuer first), PEM. Null: none was delivered or
-- none that issues it. Deploy profiles write it as the `chain` file, after the certificate
-- as `fullchain`.

ALTER TABLE certificates ADD COLUMN chain_pem TEXT;
