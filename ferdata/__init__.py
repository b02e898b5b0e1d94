"""ferdata: clean, subject-aware, versioned Parquet manifests for facial-expression datasets."""

__version__ = "0.1.0"
