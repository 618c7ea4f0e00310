//! berth-image: the OCI image half of berth. Filled by the images issue.
