"""gRPC invocation of functions' own services (NVCF's port 10081): a byte-level proxy."""
