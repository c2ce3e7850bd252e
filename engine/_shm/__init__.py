"""Private shared-memory building blocks: segments, rings, mailboxes, status table."""
