"""Tests of the test infrastructure itself (throwaway servers, fixtures)."""
