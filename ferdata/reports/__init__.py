"""Reports people look at: self-contained HTML with the figures embedded (and written as
PNGs beside it) for datasets, training runs and comparisons of runs."""

from ferdata.reports.dataset import ReportResult, dataset_report
from ferdata.reports.html import HtmlReport, embedded_images, external_references

__all__ = ["HtmlReport", "ReportResult", "dataset_report", "embedded_images", "external_references"]
