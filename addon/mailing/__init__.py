"""Mail merge: templates, campaigns, the send queue, quota, worker, unsubscribe, bounces."""
