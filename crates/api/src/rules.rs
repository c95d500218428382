//! The validation rules, stated once: each CEL expression that goes into the CRD schema sits
//! next to the message that both the API server (through CEL) and [`crate::validation`] (in
//! Rust) report, so the two always say the same words.

/// `spec.storageCapacityGiB`: SCRATCH_2 / PERSISTENT_2 sizes.
pub const CAPACITY: &str = "self == 1200 || (self >= 2400 && self % 2400 == 0)";
/// Message of [`CAPACITY`].
pub const CAPACITY_MSG: &str = "storageCapacityGiB must be 1200, 2400 or a multiple of 2400 GiB (FSx for Lustre SCRATCH_2 and PERSISTENT_2 sizes)";

/// `spec.storageCapacityGiB` on update.
pub const CAPACITY_GROWS: &str = "self >= oldSelf";
/// Message of [`CAPACITY_GROWS`].
pub const CAPACITY_GROWS_MSG: &str =
    "storageCapacityGiB may only grow: FSx for Lustre cannot shrink a file system";

/// `spec.perUnitStorageThroughput` values.
pub const THROUGHPUT_VALUES: &str = "self in [125, 250, 500, 1000]";
/// Message of [`THROUGHPUT_VALUES`].
pub const THROUGHPUT_VALUES_MSG: &str =
    "perUnitStorageThroughput must be one of 125, 250, 500 or 1000 (MB/s per TiB)";

/// `spec`: PERSISTENT_2 needs a throughput.
/// A workspace's or class's name: a label value on its volume and claim (at most 63
/// characters), and part of the AWS `Name` tag (at most 256).
pub const NAME_LENGTH: &str = "size(self.metadata.name) <= 63";
/// Message of [`NAME_LENGTH`] for workspaces.
pub const WORKSPACE_NAME_LENGTH_MSG: &str = "a workspace's name may have at most 63 characters: it becomes a label value on its volume and claim, and part of its AWS Name tag";
/// Message of [`NAME_LENGTH`] for classes.
pub const CLASS_NAME_LENGTH_MSG: &str = "a class's name may have at most 63 characters: it becomes a label value and part of its StorageClass's name";
pub const THROUGHPUT_REQUIRED: &str = "!has(self.deploymentType) || self.deploymentType != 'PERSISTENT_2' || has(self.perUnitStorageThroughput) || (has(self.storageType) && self.storageType == 'INTELLIGENT_TIERING')";
/// Message of [`THROUGHPUT_REQUIRED`].
pub const THROUGHPUT_REQUIRED_MSG: &str =
    "perUnitStorageThroughput is required for PERSISTENT_2 on SSD (125, 250, 500 or 1000)";

/// `spec`: SCRATCH_2 takes no throughput.
pub const THROUGHPUT_FORBIDDEN: &str = "!has(self.deploymentType) || self.deploymentType != 'SCRATCH_2' || !has(self.perUnitStorageThroughput)";
/// Message of [`THROUGHPUT_FORBIDDEN`].
pub const THROUGHPUT_FORBIDDEN_MSG: &str =
    "perUnitStorageThroughput is only for PERSISTENT_2; SCRATCH_2 throughput follows its size";

/// `spec`: final backups exist for persistent file systems only.
pub const FINAL_BACKUP: &str = "!has(self.finalBackupOnDelete) || !self.finalBackupOnDelete || !has(self.deploymentType) || self.deploymentType == 'PERSISTENT_2'";
/// Message of [`FINAL_BACKUP`].
pub const FINAL_BACKUP_MSG: &str =
    "finalBackupOnDelete is only for PERSISTENT_2: scratch file systems have no backups";

/// `spec`: an adopted file system is not created, so it takes none of the creation settings
/// that would silently be ignored.
pub const ADOPT_NO_CREATE_FIELDS: &str = "!has(self.fileSystemId) || (!has(self.perUnitStorageThroughput) && !has(self.dataCompressionType) && !has(self.metadata) && !has(self.efa) && !has(self.availabilityZone))";
/// Message of [`ADOPT_NO_CREATE_FIELDS`].
pub const ADOPT_NO_CREATE_FIELDS_MSG: &str = "fileSystemId adopts an existing file system: perUnitStorageThroughput, dataCompressionType, metadata, efa and availabilityZone cannot be set with it";

/// Builds the immutability rule for an optional field of `spec`.
macro_rules! immutable_rule {
    ($field:literal) => {
        concat!(
            "has(self.",
            $field,
            ") == has(oldSelf.",
            $field,
            ") && (!has(self.",
            $field,
            ") || self.",
            $field,
            " == oldSelf.",
            $field,
            ")"
        )
    };
}

/// Immutable `spec` fields: (field, CEL rule, message).
pub const IMMUTABLE_FIELDS: [(&str, &str, &str); 10] = [
    (
        "deploymentType",
        immutable_rule!("deploymentType"),
        "deploymentType is immutable: create a new workspace to change it",
    ),
    (
        "className",
        immutable_rule!("className"),
        "className is immutable: create a new workspace in the other class",
    ),
    (
        "fileSystemId",
        immutable_rule!("fileSystemId"),
        "fileSystemId is immutable: a workspace adopts one file system for its lifetime",
    ),
    (
        "claimName",
        immutable_rule!("claimName"),
        "claimName is immutable: pods name the claim, so it cannot move",
    ),
    (
        "dataCompressionType",
        immutable_rule!("dataCompressionType"),
        "dataCompressionType is immutable in this API version",
    ),
    (
        "efa",
        immutable_rule!("efa"),
        "efa is immutable: FSx enables EFA only when it creates a file system",
    ),
    (
        "availabilityZone",
        immutable_rule!("availabilityZone"),
        "availabilityZone is immutable: a file system stays in the zone of its subnet",
    ),
    (
        "storageType",
        immutable_rule!("storageType"),
        "storageType is immutable: create a new workspace for the other storage",
    ),
    (
        "readCache",
        immutable_rule!("readCache"),
        "readCache is immutable in this API version",
    ),
    (
        "source",
        immutable_rule!("source"),
        "source is immutable: it is the backup the file system was restored from",
    ),
];

// One path segment: anything but `/`, `%`, ASCII whitespace and control characters, and not
// `.` or `..` (a segment of dots only is allowed from three dots on). Written without a
// backslash, so that the same text is a Rust regex and, unescaped, a CEL string literal.
macro_rules! segment_re {
    () => {
        "([.]{0,2}[^./%[:space:][:cntrl:]][^/%[:space:][:cntrl:]]*|[.]{3,}[^/%[:space:][:cntrl:]]*)"
    };
}
macro_rules! s3_path_re {
    () => {
        concat!(
            "^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/(",
            segment_re!(),
            "/)*$"
        )
    };
}
macro_rules! s3_prefix_re {
    () => {
        concat!(
            "^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/(",
            segment_re!(),
            "/)*)?$"
        )
    };
}
macro_rules! fs_path_re {
    () => {
        concat!("^(/", segment_re!(), ")+$")
    };
}

/// Regular expression of an `s3Path` (RE2 syntax, shared by CEL and Rust).
pub const S3_PATH_RE: &str = s3_path_re!();
/// Regular expression of an allowed S3 prefix.
pub const S3_PREFIX_RE: &str = s3_prefix_re!();
/// Regular expression of a `fileSystemPath` other than `/`.
pub const FS_PATH_RE: &str = fs_path_re!();

/// `spec.dataRepositories[].s3Path`.
pub const S3_PATH: &str = concat!("self.matches('", s3_path_re!(), "')");
/// Message of [`S3_PATH`].
pub const S3_PATH_MSG: &str = "s3Path must be an S3 URL of the form s3://bucket/ or s3://bucket/prefix/ (lower-case bucket name, ending in /; no . or .. segments, %, whitespace or control characters)";

/// `spec.dataRepositories[].fileSystemPath`.
pub const FS_PATH: &str = concat!("self == '/' || self.matches('", fs_path_re!(), "')");
/// Message of [`FS_PATH`].
pub const FS_PATH_MSG: &str = "fileSystemPath must be an absolute path such as /datasets (starting with /, no trailing /; no . or .. segments, %, whitespace or control characters)";

/// `spec.dataRepositories`: file system paths are unique.
pub const FS_PATH_UNIQUE: &str =
    "self.all(a, self.exists_one(b, b.fileSystemPath == a.fileSystemPath))";
/// Message of [`FS_PATH_UNIQUE`].
pub const FS_PATH_UNIQUE_MSG: &str =
    "each data repository needs its own fileSystemPath: two entries use the same path";

/// `spec.dataRepositories`: no path inside another.
pub const FS_PATH_NESTED: &str = "self.all(a, self.all(b, a.fileSystemPath == '/' || b.fileSystemPath == a.fileSystemPath || !b.fileSystemPath.startsWith(a.fileSystemPath + '/')))";
/// Message of [`FS_PATH_NESTED`].
pub const FS_PATH_NESTED_MSG: &str =
    "fileSystemPath entries may not be nested: one data repository path lies inside another";

/// `spec.dataRepositories`: `/` only alone.
pub const FS_PATH_ROOT_ALONE: &str = "size(self) <= 1 || self.all(r, r.fileSystemPath != '/')";
/// Message of [`FS_PATH_ROOT_ALONE`].
pub const FS_PATH_ROOT_ALONE_MSG: &str =
    "fileSystemPath / is only allowed when it is the only data repository";

/// `spec.dataRepositories`: no export before deletion beside automatic export.
pub const EXPORT_NOT_AUTO: &str = "!self.exists(r, has(r.exportOnDelete) && r.exportOnDelete) || self.all(r, !has(r.autoExport) || size(r.autoExport) == 0)";
/// Message of [`EXPORT_NOT_AUTO`].
pub const EXPORT_NOT_AUTO_MSG: &str = "exportOnDelete cannot be used in a workspace with autoExport: FSx runs no export task on a file system that exports automatically (links with autoExport are written to S3 as files change)";

/// `spec.expiry`: it says when.
pub const EXPIRY_WHEN: &str = "has(self.afterIdle) || has(self.at)";
/// Message of [`EXPIRY_WHEN`].
pub const EXPIRY_WHEN_MSG: &str = "expiry needs afterIdle, at, or both";

/// `spec`: an expiry that exports needs a link to export, and no automatic export.
pub const EXPIRY_EXPORT: &str = "!has(self.expiry) || !has(self.expiry.action) || self.expiry.action != 'ExportThenDelete' || (has(self.dataRepositories) && size(self.dataRepositories) > 0 && self.dataRepositories.all(r, !has(r.autoExport) || size(r.autoExport) == 0))";
/// Message of [`EXPIRY_EXPORT`].
pub const EXPIRY_EXPORT_MSG: &str = "expiry.action ExportThenDelete needs at least one data repository and none with autoExport (FSx runs no export task on a file system that exports automatically); use Delete";

/// `spec.metadata`: IOPS exactly in UserProvisioned mode.
pub const METADATA_IOPS_MODE: &str =
    "self.mode == 'UserProvisioned' ? has(self.iops) : !has(self.iops)";
/// Message of [`METADATA_IOPS_MODE`].
pub const METADATA_IOPS_MODE_MSG: &str = "metadata.iops is required with mode UserProvisioned and not allowed with Automatic (FSx then sizes the IOPS from the storage capacity)";

/// `spec.metadata.iops`: the values FSx accepts on SSD storage.
pub const METADATA_IOPS_VALUES: &str =
    "self in [1500, 3000, 6000] || (self % 12000 == 0 && self >= 12000 && self <= 192000)";
/// Message of [`METADATA_IOPS_VALUES`].
pub const METADATA_IOPS_VALUES_MSG: &str =
    "metadata.iops must be 1500, 3000, 6000, 12000 or a multiple of 12000 up to 192000";

/// `spec`: a metadata configuration exists on PERSISTENT_2 only.
pub const METADATA_PERSISTENT: &str =
    "!has(self.metadata) || !has(self.deploymentType) || self.deploymentType == 'PERSISTENT_2'";
/// Message of [`METADATA_PERSISTENT`].
pub const METADATA_PERSISTENT_MSG: &str =
    "metadata is only for PERSISTENT_2: a SCRATCH_2 file system has no metadata configuration";

/// `spec` on update: provisioned metadata IOPS only grow.
pub const METADATA_IOPS_GROWS: &str = "!has(oldSelf.metadata) || !has(oldSelf.metadata.iops) || (has(self.metadata) && has(self.metadata.iops) && self.metadata.iops >= oldSelf.metadata.iops)";
/// Message of [`METADATA_IOPS_GROWS`].
pub const METADATA_IOPS_GROWS_MSG: &str = "metadata.iops may only grow: FSx cannot lower a file system's provisioned metadata IOPS, nor hand them back to Automatic";

/// `spec`: EFA exists on PERSISTENT_2 only.
pub const EFA_PERSISTENT: &str = "!has(self.efa) || !self.efa || !has(self.deploymentType) || self.deploymentType == 'PERSISTENT_2'";
/// Message of [`EFA_PERSISTENT`].
pub const EFA_PERSISTENT_MSG: &str = "efa is only for PERSISTENT_2 (with a metadata configuration, which the operator always gives it)";

/// `spec` on update: an EFA-enabled file system keeps its throughput.
pub const EFA_THROUGHPUT: &str = "!has(self.efa) || !self.efa || !has(oldSelf.perUnitStorageThroughput) || (has(self.perUnitStorageThroughput) && self.perUnitStorageThroughput == oldSelf.perUnitStorageThroughput)";
/// Message of [`EFA_THROUGHPUT`].
pub const EFA_THROUGHPUT_MSG: &str = "perUnitStorageThroughput cannot change on an EFA-enabled file system: create a new workspace for another throughput";

/// Class: EFA needs the all-traffic rules only a managed security group gets.
pub const EFA_MANAGED_SG: &str = "!has(self.efa) || !has(self.efa.allowed) || !self.efa.allowed || !has(self.securityGroup.managed) || self.securityGroup.managed";
/// Message of [`EFA_MANAGED_SG`].
pub const EFA_MANAGED_SG_MSG: &str = "efa.allowed needs securityGroup.managed: true: an EFA file system needs its security group to allow all traffic to and from itself and the clients, which the operator sets on the groups it manages";

/// `spec`: SSD storage is sized by capacity and per-TiB throughput.
pub const SSD_FIELDS: &str = "(has(self.storageType) && self.storageType == 'INTELLIGENT_TIERING') || (has(self.storageCapacityGiB) && !has(self.throughputCapacity) && !has(self.readCache))";
/// Message of [`SSD_FIELDS`].
pub const SSD_FIELDS_MSG: &str = "SSD storage needs storageCapacityGiB, and takes neither throughputCapacity nor readCache (those are for storageType INTELLIGENT_TIERING)";

/// `spec`: Intelligent-Tiering is elastic: a throughput, no capacity.
pub const TIERING_FIELDS: &str = "!has(self.storageType) || self.storageType != 'INTELLIGENT_TIERING' || (has(self.throughputCapacity) && !has(self.storageCapacityGiB) && !has(self.perUnitStorageThroughput) && has(self.deploymentType) && self.deploymentType == 'PERSISTENT_2')";
/// Message of [`TIERING_FIELDS`].
pub const TIERING_FIELDS_MSG: &str = "storageType INTELLIGENT_TIERING needs deploymentType PERSISTENT_2 and throughputCapacity, and takes neither storageCapacityGiB (its storage grows and shrinks with the data) nor perUnitStorageThroughput";

/// `spec`: no S3 links on Intelligent-Tiering.
pub const TIERING_NO_LINKS: &str = "!has(self.storageType) || self.storageType != 'INTELLIGENT_TIERING' || !has(self.dataRepositories) || size(self.dataRepositories) == 0";
/// Message of [`TIERING_NO_LINKS`].
pub const TIERING_NO_LINKS_MSG: &str = "dataRepositories cannot be linked to an INTELLIGENT_TIERING file system: FSx supports no S3 data repository there; use SSD storage to link S3";

/// `spec`: Intelligent-Tiering takes provisioned metadata IOPS of 6000 or 12000.
pub const TIERING_METADATA: &str = "!has(self.storageType) || self.storageType != 'INTELLIGENT_TIERING' || !has(self.metadata) || (self.metadata.mode == 'UserProvisioned' && has(self.metadata.iops) && self.metadata.iops in [6000, 12000])";
/// Message of [`TIERING_METADATA`].
pub const TIERING_METADATA_MSG: &str = "an INTELLIGENT_TIERING file system takes metadata mode UserProvisioned with 6000 or 12000 IOPS (Automatic is for SSD); left out, it gets 6000";

/// `spec.throughputCapacity`: FSx's Intelligent-Tiering steps.
pub const TIERING_THROUGHPUT: &str = "self % 4000 == 0";
/// Message of [`TIERING_THROUGHPUT`].
pub const TIERING_THROUGHPUT_MSG: &str =
    "throughputCapacity must be a multiple of 4000 MB/s (4000, 8000, ...)";

/// `spec.throughputCapacity` on update.
pub const TIERING_THROUGHPUT_GROWS: &str = "self >= oldSelf";
/// Message of [`TIERING_THROUGHPUT_GROWS`].
pub const TIERING_THROUGHPUT_GROWS_MSG: &str = "throughputCapacity may only grow: FSx cannot lower an Intelligent-Tiering file system's throughput";

/// `spec.readCache`: a size exactly with UserProvisioned.
pub const READ_CACHE_SIZE: &str =
    "self.sizingMode == 'USER_PROVISIONED' ? has(self.sizeGiB) : !has(self.sizeGiB)";
/// Message of [`READ_CACHE_SIZE`].
pub const READ_CACHE_SIZE_MSG: &str =
    "readCache.sizeGiB is required with sizingMode USER_PROVISIONED and not allowed otherwise";

/// `spec`: the read cache's size follows the throughput.
pub const READ_CACHE_BOUNDS: &str = "!has(self.readCache) || !has(self.readCache.sizeGiB) || !has(self.throughputCapacity) || (self.readCache.sizeGiB >= 32 * (self.throughputCapacity / 4000) && self.readCache.sizeGiB <= 131072 * (self.throughputCapacity / 4000))";
/// Message of [`READ_CACHE_BOUNDS`].
pub const READ_CACHE_BOUNDS_MSG: &str =
    "readCache.sizeGiB must be 32 to 131072 GiB for every 4000 MB/s of throughputCapacity";

/// Class: one subnet, or several.
pub const SUBNETS_ONE_OF: &str =
    "has(self.subnetId) != (has(self.subnetIds) && size(self.subnetIds) > 0)";
/// Message of [`SUBNETS_ONE_OF`].
pub const SUBNETS_ONE_OF_MSG: &str = "give subnetId (one subnet) or subnetIds (several, each in its own Availability Zone), not both and not neither";

/// Class `spec.rootSquash`: squash off (`0:0`) or two non-zero ids.
pub const ROOT_SQUASH_IDS: &str =
    "self.uidGid == '0:0' || !(self.uidGid.startsWith('0:') || self.uidGid.endsWith(':0'))";
/// Message of [`ROOT_SQUASH_IDS`].
pub const ROOT_SQUASH_IDS_MSG: &str =
    "rootSquash.uidGid must be 0:0 (root squash off) or two non-zero ids, such as 65534:65534";

/// Class `spec.rootSquash`: exceptions only while squashing.
pub const ROOT_SQUASH_NIDS: &str =
    "self.uidGid != '0:0' || !has(self.noSquashNids) || size(self.noSquashNids) == 0";
/// Message of [`ROOT_SQUASH_NIDS`].
pub const ROOT_SQUASH_NIDS_MSG: &str =
    "rootSquash.noSquashNids are exceptions to root squash: they need a uidGid other than 0:0";

/// Class `spec.logging`: nothing to send where nothing is logged.
pub const LOG_DISABLED: &str = "self.level != 'DISABLED' || !has(self.destination)";
/// Message of [`LOG_DISABLED`].
pub const LOG_DISABLED_MSG: &str =
    "logging.destination cannot be set with level DISABLED (FSx refuses it): leave it out";

/// Class `spec.securityGroup`: the file system needs some security group.
pub const SG_NEEDED: &str = "(has(self.managed) && self.managed) || (has(self.additionalSecurityGroupIds) && size(self.additionalSecurityGroupIds) > 0)";
/// Message of [`SG_NEEDED`].
pub const SG_NEEDED_MSG: &str = "with managed: false, additionalSecurityGroupIds must name at least one security group for the file system";

/// Class `spec.securityGroup`: a managed group needs someone to let in.
pub const SG_CLIENTS: &str = "(has(self.managed) && !self.managed) || (has(self.clientSecurityGroupIds) && size(self.clientSecurityGroupIds) > 0) || (has(self.clientCidrs) && size(self.clientCidrs) > 0)";
/// Message of [`SG_CLIENTS`].
pub const SG_CLIENTS_MSG: &str = "a managed security group needs clientSecurityGroupIds or clientCidrs: otherwise no node can mount the file system";

/// Class `spec.tags`: keys reserved by AWS or the operator.
pub const TAG_KEYS: &str =
    "self.all(k, !k.startsWith('aws:') && !k.startsWith('workspaces.lustre.dev/') && k != 'Name')";
/// Message of [`TAG_KEYS`].
pub const TAG_KEYS_MSG: &str = "tag keys may not start with aws: or workspaces.lustre.dev/, nor be Name: those are reserved for AWS and the operator";

/// Characters AWS accepts in FSx tag keys and values (EC2 accepts more; FSx is the stricter).
pub const TAG_CHARS_RE: &str = r"^[\p{L}\p{Z}\p{N}_.:/=+@-]*$";
/// Class and workspace `tags`: values hold only characters AWS accepts (the same pattern as
/// [`TAG_CHARS_RE`], its backslashes escaped for a CEL string).
///
/// Keys are checked by `validate()` only (an `InvalidSpec` condition before any AWS call): a
/// regular expression over map keys is too expensive for kube-apiserver's CEL cost budget,
/// since no schema keyword bounds a key's length (the estimator assumes a key as long as a
/// whole request). Values are bounded by the schema's `maxLength`, so their check is cheap.
pub const TAG_CHARS: &str = r"self.all(k, self[k].matches('^[\\p{L}\\p{Z}\\p{N}_.:/=+@-]*$'))";
/// Message of [`TAG_CHARS`].
pub const TAG_CHARS_MSG: &str = "tag keys and values may contain only letters, digits, spaces and _ . : / = + - @ (the characters AWS accepts in tags)";

/// Class and workspace `tags`: AWS sizes.
pub const TAG_SIZES: &str = "self.all(k, size(k) >= 1 && size(k) <= 128 && size(self[k]) <= 256)";
/// Message of [`TAG_SIZES`].
pub const TAG_SIZES_MSG: &str = "tag keys must be 1-128 characters and values at most 256";

/// Class `spec.adoption.fileSystemTags`: adoption needs a selector.
pub const ADOPTION_TAGS: &str = "size(self) > 0";
/// Message of [`ADOPTION_TAGS`].
pub const ADOPTION_TAGS_MSG: &str = "adoption.fileSystemTags must name at least one tag: a policy that admits every file system in the VPC is not a policy";

/// Class `spec.allowedDataRepositories`: every entry an S3 prefix.
pub const S3_PREFIXES: &str = concat!("self.all(p, p.matches('", s3_prefix_re!(), "'))");
/// Message of [`S3_PREFIXES`].
pub const S3_PREFIX_MSG: &str = "allowedDataRepositories entries must be S3 prefixes ending in /, such as s3://bucket/ or s3://bucket/prefix/ (s3:// allows every bucket; no . or .. segments, %, whitespace or control characters)";
/// Class `spec.readOnlyDataRepositories`: every entry an S3 prefix.
pub const S3_READ_ONLY_PREFIXES: &str = S3_PREFIXES;
/// Message of [`S3_READ_ONLY_PREFIXES`].
pub const S3_READ_ONLY_PREFIX_MSG: &str = "readOnlyDataRepositories entries must be S3 prefixes ending in /, such as s3://bucket/ or s3://bucket/prefix/ (s3:// covers every bucket; no . or .. segments, %, whitespace or control characters)";
/// Where a prefix stands for the workspace's namespace.
pub const NAMESPACE_PLACEHOLDER: &str = "{namespace}";

/// Schema `pattern`s, shared by the type definitions (schema) and the Rust validation.
pub mod patterns {
    /// A DNS-1123 label.
    pub const DNS_LABEL: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
    /// A DNS-1123 subdomain.
    pub const DNS_SUBDOMAIN: &str =
        r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
    /// An FSx file system id.
    pub const FILE_SYSTEM_ID: &str = r"^fs-[0-9a-f]{8,17}$";
    /// A subnet id.
    pub const SUBNET_ID: &str = r"^subnet-[0-9a-f]{8,17}$";
    /// A security group id.
    pub const SECURITY_GROUP_ID: &str = r"^sg-[0-9a-f]{1,17}$";
    /// An IPv4 CIDR block.
    pub const CIDR: &str = r"^([0-9]{1,3}\.){3}[0-9]{1,3}/([0-9]|[12][0-9]|3[0-2])$";
    /// An AWS region name.
    pub const REGION: &str = r"^[a-z]{2}(-[a-z]+)+-[0-9]+$";
    /// Root squash's `UID:GID`, each 0 to 4294967294 without leading zeros.
    pub const ROOT_SQUASH: &str = concat!(
        "^(0|[1-9][0-9]{0,8}|[1-3][0-9]{9}|4[01][0-9]{8}|42[0-8][0-9]{7}|429[0-3][0-9]{6}|4294[0-8][0-9]{5}|42949[0-5][0-9]{4}|429496[0-6][0-9]{3}|4294967[01][0-9]{2}|42949672[0-8][0-9]|429496729[0-4])",
        ":(0|[1-9][0-9]{0,8}|[1-3][0-9]{9}|4[01][0-9]{8}|42[0-8][0-9]{7}|429[0-3][0-9]{6}|4294[0-8][0-9]{5}|42949[0-5][0-9]{4}|429496[0-6][0-9]{3}|4294967[01][0-9]{2}|42949672[0-8][0-9]|429496729[0-4])$"
    );
    /// A Lustre client NID or range over TCP, as FSx takes it.
    pub const LUSTRE_NID: &str = r"^([0-9\[\]\-]*\.){3}([0-9\[\]\-]*)@tcp$";
    /// A CloudWatch Logs group ARN under `/aws/fsx`.
    pub const LOG_GROUP_ARN: &str = r"^arn:aws(-[a-z]+)*:logs:[a-z]{2}(-[a-z]+)+-[0-9]+:[0-9]{12}:log-group:/aws/fsx[-._/#A-Za-z0-9]*(:\*)?$";
    /// An Availability Zone name, such as us-east-1b.
    pub const AVAILABILITY_ZONE: &str = r"^[a-z]{2}(-[a-z0-9]+)+[a-z]$";
    /// A weekly maintenance start time.
    pub const MAINTENANCE_TIME: &str = r"^[1-7]:([01][0-9]|2[0-3]):[0-5][0-9]$";
    /// A daily start time, `HH:MM` in UTC (FSx takes exactly five characters).
    pub const DAILY_TIME: &str = r"^([01][0-9]|2[0-3]):[0-5][0-9]$";
    /// An FSx backup id.
    pub const BACKUP_ID: &str = r"^backup-[0-9a-f]{8,}$";
}

/// `LustreDataTask.spec`: a task runs once; its spec does not change.
pub const TASK_IMMUTABLE: &str = "self == oldSelf";
/// Message of [`TASK_IMMUTABLE`].
pub const TASK_IMMUTABLE_MSG: &str =
    "a data task's spec is immutable: it runs once; create a new LustreDataTask to run another";

/// `LustreDataTask.spec`: release options only on a release.
pub const TASK_RELEASE_ONLY: &str = "!has(self.release) || self.type == 'Release'";
/// Message of [`TASK_RELEASE_ONLY`].
pub const TASK_RELEASE_ONLY_MSG: &str = "release options are only for type Release";

/// `LustreWorkspaceBackup.spec`: it backs up one workspace for its lifetime, and only the
/// operator makes final-backup objects.
pub const BACKUP_IMMUTABLE: &str = "self.workspace == oldSelf.workspace && has(self.finalBackup) == has(oldSelf.finalBackup) && (!has(self.finalBackup) || self.finalBackup == oldSelf.finalBackup)";
/// Message of [`BACKUP_IMMUTABLE`].
pub const BACKUP_IMMUTABLE_MSG: &str = "workspace and finalBackup are immutable: create a new LustreWorkspaceBackup to back up another workspace";

/// `spec.source`: one backup, by name or by id.
pub const SOURCE_ONE: &str = "has(self.backupName) != has(self.backupId)";
/// Message of [`SOURCE_ONE`].
pub const SOURCE_ONE_MSG: &str =
    "source names exactly one backup: backupName (a LustreWorkspaceBackup) or backupId";
/// `spec.source`: a namespace only with a backup name.
pub const SOURCE_NAMESPACE: &str = "!has(self.backupNamespace) || has(self.backupName)";
/// Message of [`SOURCE_NAMESPACE`].
pub const SOURCE_NAMESPACE_MSG: &str = "source.backupNamespace is the namespace of backupName's LustreWorkspaceBackup: it goes with backupName only";
/// `spec`: restores make PERSISTENT_2 file systems (scratch ones have no backups).
pub const RESTORE_PERSISTENT: &str =
    "!has(self.source) || !has(self.deploymentType) || self.deploymentType == 'PERSISTENT_2'";
/// Message of [`RESTORE_PERSISTENT`].
pub const RESTORE_PERSISTENT_MSG: &str = "source restores a backup, and backups are of PERSISTENT_2 file systems: set deploymentType PERSISTENT_2";
/// `spec`: a workspace restores a backup or adopts a file system, not both.
pub const RESTORE_NOT_ADOPT: &str = "!has(self.source) || !has(self.fileSystemId)";
/// Message of [`RESTORE_NOT_ADOPT`].
pub const RESTORE_NOT_ADOPT_MSG: &str = "source and fileSystemId exclude each other: a workspace restores a backup into a new file system or adopts an existing one";

/// `LustreWorkspaceGrant.spec`: it accepts one workspace's share for its lifetime.
pub const GRANT_IMMUTABLE: &str = "self == oldSelf";
/// Message of [`GRANT_IMMUTABLE`].
pub const GRANT_IMMUTABLE_MSG: &str =
    "a grant's spec is immutable: create a new LustreWorkspaceGrant to accept another share";
