"""The CRM domain: workspaces, folders, fields, records, links and notes. No Flask here."""
