"""The Supabase database contract on RDS: login roles, bootstrap SQL, connection pooling."""
