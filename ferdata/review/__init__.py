"""Label review in Label Studio: push suspects as tasks, pull decisions into the relabel log."""

from ferdata.review.connection import Connection, ServerError, connect
from ferdata.review.project import labeling_config, project_title
from ferdata.review.pull import PullResult, pull
from ferdata.review.push import PushInterrupted, PushResult, push
from ferdata.review.status import ReviewStatus, status

__all__ = ["Connection", "PullResult", "PushInterrupted", "PushResult", "ReviewStatus", "ServerError", "connect",
           "labeling_config", "project_title", "pull", "push", "status"]
