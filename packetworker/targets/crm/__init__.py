"""What the CRM targets share (Dataverse, CRM as a Service, the Dynamics portal proxy).

- `target.py`: `CrmTarget`, the skeleton's steps for a CRM: two mappings per packet, the
  per-record error policy, writes in doubt per packet;
- `operations.py`: what one operation becomes (`OpResult`, `RecordRefused`) and the names a
  create is journalled and looked up by;
- `contacts.py`: the contact mapping's contacts (`ContactData`);
- `options.py`: the settings every CRM target takes.
"""
