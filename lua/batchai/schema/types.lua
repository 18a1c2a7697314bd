-- The Batch AI 2018-05-01 types as data: fields in spec order, kinds, required
-- lists, defaults, cross-field rules and help text (in our own words).
--
-- A type is { summary, doc, spec, fields = { field... }, rules = { name... } }.
-- A field is { NAME, KIND, required=, read_only=, secret=, default=, values=,
-- nonempty=, allow_empty=, doc= } (required strings must not be empty unless allow_empty).  KIND is a scalar kind of batchai.schema.kinds ("string",
-- "count", "enum", "duration", ...), a type name, or "TypeName[]" for an array.
-- `rules` name the cross-field checks of batchai.schema.rules (create mode only).
-- `group` places the type in `bai help types`; `constructor = true` exports it on `bai`.
local M = {}

local function def(name, t)
  t.name = name
  M[#M + 1] = t
  M[name] = t
end

-- ---- the job model (constructors on `bai`) ----------------------------------

def("JobProperties", {
  group = "job",
  constructor = true,
  spec = "JobBaseProperties (create body), JobProperties (GET)",
  summary = "A training job: where it runs, what it runs, its files and limits",
  doc = [[The properties of a job.  On create, exactly one toolkit settings table
says what runs (and gives the wire toolType); cluster, nodeCount and
stdOutErrPathPrefix are required.  :to_json() gives the create body
{"properties": {...}}.  Jobs read back from the service also carry the
read-only fields below (state, times, toolType).]],
  aliases = { priority = "schedulingPriority" },  -- stale key in some service responses
  fields = {
    { "schedulingPriority", "enum", values = { "low", "normal", "high" }, default = "normal",
      doc = "Priority of the job in the cluster's queue." },
    { "cluster", "ResourceId", required = true,
      doc = "The cluster the job runs on ({ id = ... })." },
    { "mountVolumes", "MountVolumes",
      doc = "File systems mounted for this job only, under $AZ_BATCHAI_JOB_MOUNT_ROOT; unmounted when it ends." },
    { "nodeCount", "count", required = true,
      doc = "Number of nodes; the job is gang-scheduled on all of them at once." },
    { "containerSettings", "ContainerSettings",
      doc = "Run the job in this Docker container; without it the job runs directly on the node." },
    { "toolType", "enum", read_only = true,
      values = { "cntk", "tensorflow", "caffe", "caffe2", "chainer", "horovod", "custommpi", "custom", "pytorch" },
      aliases = { mpi = "custommpi" },  -- an older revision of the spec said "mpi"
      doc = "Which toolkit runs the job, derived from the settings table given (custom MPI is \"custommpi\")." },
    { "cntkSettings", "CNTKsettings", toolkit = "cntk",
      doc = "Run a CNTK (Microsoft Cognitive Toolkit) job." },
    { "pyTorchSettings", "PyTorchSettings", toolkit = "pytorch",
      doc = "Run a PyTorch job." },
    { "tensorFlowSettings", "TensorFlowSettings", toolkit = "tensorflow",
      doc = "Run a TensorFlow job, single-process or with parameter servers." },
    { "caffeSettings", "CaffeSettings", toolkit = "caffe",
      doc = "Run a Caffe job." },
    { "caffe2Settings", "Caffe2Settings", toolkit = "caffe2",
      doc = "Run a Caffe2 job." },
    { "chainerSettings", "ChainerSettings", toolkit = "chainer",
      doc = "Run a Chainer job." },
    { "customToolkitSettings", "CustomToolkitSettings", toolkit = "custom",
      doc = "Run any command line on the job's first node." },
    { "customMpiSettings", "CustomMpiSettings", toolkit = "custommpi",
      doc = "Run a command line under MPI on every node." },
    { "horovodSettings", "HorovodSettings", toolkit = "horovod",
      doc = "Run a Horovod job." },
    { "jobPreparation", "JobPreparation",
      doc = "A command run on every node of the job before the toolkit starts." },
    { "jobOutputDirectoryPathSegment", "string", read_only = true,
      doc = "Unique path segment the service adds between an output directory's pathPrefix and pathSuffix." },
    { "stdOutErrPathPrefix", "string", required = true,
      doc = "Where the job's stdout, stderr and execution log are written." },
    { "inputDirectories", "InputDirectory[]",
      doc = "Input directories, each exposed as $AZ_BATCHAI_INPUT_<id>." },
    { "outputDirectories", "OutputDirectory[]",
      doc = "Output directories, each created per job and exposed as $AZ_BATCHAI_OUTPUT_<id>." },
    { "environmentVariables", "EnvironmentVariable[]",
      doc = "Environment variables set for the job." },
    { "secrets", "EnvironmentVariableWithSecretValue[]",
      doc = "Environment variables with secret values; the service never reports the values back." },
    { "constraints", "JobConstraints",
      doc = "Limits on the job (maximum wall-clock time)." },
    { "creationTime", "string", read_only = true, doc = "When the job was created." },
    { "provisioningState", "enum", read_only = true,
      values = { "creating", "deleting", "succeeded", "failed" },
      doc = "Provisioning state of the job resource." },
    { "provisioningStateTransitionTime", "string", read_only = true,
      doc = "When the job entered its provisioning state." },
    { "executionState", "enum", read_only = true,
      values = { "queued", "running", "terminating", "succeeded", "failed" },
      doc = "queued (waiting to run), running, terminating (a terminate is in progress), "
        .. "succeeded (exit code 0) or failed (non-zero exit, or it could not be launched)." },
    { "executionStateTransitionTime", "string", read_only = true,
      doc = "When the job entered its execution state." },
    { "executionInfo", "JobExecutionInfo", read_only = true,
      doc = "Start and end times, exit code and errors of the run." },
  },
  rules = { "one_toolkit", "tensorflow_counts", "unique_env_names", "unique_directory_ids" },
})

def("JobConstraints", {
  group = "job",
  constructor = true,
  spec = "JobBaseProperties.constraints (inline object)",
  summary = "Limits on a job",
  doc = "The `constraints` field of JobProperties.",
  fields = {
    { "maxWallClockTime", "duration", default = "7.00:00:00",
      doc = "Longest time the job may run: an ISO-8601 duration (\"P7D\", \"PT1H30M\") or a "
        .. ".NET TimeSpan (\"7.00:00:00\", stored as ISO-8601); default one week." },
  },
})

def("ResourceId", {
  group = "job",
  constructor = true,
  summary = "A reference to another resource by its id",
  doc = "Used for the cluster, Key Vault and file server references.",
  fields = {
    { "id", "string", required = true, doc = "The resource's id (an ARM id, or a local cluster name)." },
  },
})

def("ContainerSettings", {
  group = "job",
  constructor = true,
  summary = "Run the job in a Docker container",
  fields = {
    { "imageSourceRegistry", "ImageSourceRegistry", required = true,
      doc = "The image to run and the registry to pull it from." },
    { "shmSize", "string", doc = "Size of /dev/shm, in docker's syntax (\"8g\")." },
  },
})

def("ImageSourceRegistry", {
  group = "job",
  constructor = true,
  summary = "A Docker image and the registry it comes from",
  fields = {
    { "serverUrl", "string", doc = "The registry's URL; Docker Hub when absent." },
    { "image", "string", required = true, doc = "The image name, e.g. \"pytorch/pytorch:1.0-cuda10.0\"." },
    { "credentials", "PrivateRegistryCredentials", doc = "Credentials for a private registry." },
  },
})

def("PrivateRegistryCredentials", {
  group = "job",
  constructor = true,
  summary = "Login for a private Docker registry",
  doc = "Give exactly one of password and passwordSecretReference.",
  fields = {
    { "username", "string", required = true, doc = "The registry user." },
    { "password", "string", secret = true, doc = "The password (printed as \"***\")." },
    { "passwordSecretReference", "KeyVaultSecretReference", doc = "A Key Vault secret holding the password." },
  },
  rules = { "one_of_password" },
})

def("KeyVaultSecretReference", {
  group = "job",
  constructor = true,
  summary = "A secret kept in Azure Key Vault",
  fields = {
    { "sourceVault", "ResourceId", required = true, doc = "The Key Vault's resource id." },
    { "secretUrl", "string", required = true, doc = "The URL of the secret in the vault." },
  },
})

local function python_fields(process_count)
  local fields = {
    { "pythonScriptFilePath", "string", required = true, doc = "The Python script to run." },
    { "pythonInterpreterPath", "string", nonempty = true, doc = "The Python interpreter to use." },
    { "commandLineArgs", "string", doc = "Arguments passed to the script." },
  }
  if process_count then
    fields[#fields + 1] = { "processCount", "count",
      doc = "Number of processes to start; defaults to the job's nodeCount." }
  end
  return fields
end

def("CNTKsettings", {
  group = "toolkit",
  constructor = true,
  summary = "A CNTK (Microsoft Cognitive Toolkit) job",
  doc = [[BrainScript jobs give configFilePath; Python jobs (the default language)
give pythonScriptFilePath and optionally pythonInterpreterPath.]],
  fields = {
    { "languageType", "enum", values = { "BrainScript", "Python" }, default = "Python",
      doc = "\"BrainScript\" or \"Python\"." },
    { "configFilePath", "string", nonempty = true,
      doc = "The BrainScript configuration file (BrainScript only)." },
    { "pythonScriptFilePath", "string", nonempty = true, doc = "The Python script to run (Python only)." },
    { "pythonInterpreterPath", "string", nonempty = true, doc = "The Python interpreter (Python only)." },
    { "commandLineArgs", "string", doc = "Arguments passed to the script or to cntk." },
    { "processCount", "count", doc = "Number of processes to start; defaults to the job's nodeCount." },
  },
  rules = { "cntk_language" },
})

def("CaffeSettings", {
  group = "toolkit",
  constructor = true,
  summary = "A Caffe job",
  doc = "Give exactly one of configFilePath and pythonScriptFilePath.",
  fields = {
    { "configFilePath", "string", nonempty = true, doc = "The Caffe solver configuration file." },
    { "pythonScriptFilePath", "string", nonempty = true, doc = "A Python script to run instead of a config file." },
    { "pythonInterpreterPath", "string", nonempty = true,
      doc = "The Python interpreter (only with pythonScriptFilePath)." },
    { "commandLineArgs", "string", doc = "Arguments passed to the job." },
    { "processCount", "count", doc = "Number of processes to start; defaults to the job's nodeCount." },
  },
  rules = { "caffe_entry" },
})

def("Caffe2Settings", {
  group = "toolkit",
  constructor = true,
  summary = "A Caffe2 job",
  fields = python_fields(false),
})

def("ChainerSettings", {
  group = "toolkit",
  constructor = true,
  summary = "A Chainer job",
  fields = python_fields(true),
})

local pytorch = python_fields(true)
pytorch[#pytorch + 1] = { "communicationBackend", "enum", values = { "TCP", "Gloo", "MPI" },
  doc = "Backend for distributed runs: \"TCP\", \"Gloo\" or \"MPI\"; not needed on one process." }
def("PyTorchSettings", {
  group = "toolkit",
  constructor = true,
  summary = "A PyTorch job",
  fields = pytorch,
})

def("TensorFlowSettings", {
  group = "toolkit",
  constructor = true,
  summary = "A TensorFlow job, single-process or with parameter servers",
  doc = [[A job is distributed when workerCommandLineArgs or
parameterServerCommandLineArgs is given; only then may workerCount (default:
nodeCount) and parameterServerCount (default 1, at most nodeCount) be set.]],
  fields = {
    { "pythonScriptFilePath", "string", required = true, doc = "The Python script to run." },
    { "pythonInterpreterPath", "string", nonempty = true, doc = "The Python interpreter to use." },
    { "masterCommandLineArgs", "string", doc = "Arguments for the master task." },
    { "workerCommandLineArgs", "string", doc = "Arguments for the worker tasks (distributed runs)." },
    { "parameterServerCommandLineArgs", "string",
      doc = "Arguments for the parameter server tasks (distributed runs)." },
    { "workerCount", "count",
      doc = "Number of worker tasks (distributed runs); defaults to nodeCount." },
    { "parameterServerCount", "count",
      doc = "Number of parameter server tasks (distributed runs), at most nodeCount; defaults to 1." },
  },
})

def("HorovodSettings", {
  group = "toolkit",
  constructor = true,
  summary = "A Horovod job",
  fields = python_fields(true),
})

def("CustomMpiSettings", {
  group = "toolkit",
  constructor = true,
  summary = "A command line run under MPI on every node",
  fields = {
    { "commandLine", "string", required = true, doc = "The command line the MPI runtime starts." },
    { "processCount", "count", doc = "Number of processes to start; defaults to the job's nodeCount." },
  },
})

def("CustomToolkitSettings", {
  group = "toolkit",
  constructor = true,
  summary = "Any command line, run on the job's first node",
  fields = {
    { "commandLine", "string", doc = "The command line to run." },
  },
})

def("JobPreparation", {
  group = "job",
  constructor = true,
  summary = "A command run on each node before the toolkit starts",
  fields = {
    { "commandLine", "string", required = true,
      doc = "The command to run; inside the job's container when it has one." },
  },
})

def("EnvironmentVariable", {
  group = "job",
  constructor = true,
  summary = "An environment variable for the job",
  fields = {
    { "name", "envname", required = true, doc = "The variable's name (a valid shell name, unique in the job)." },
    { "value", "string", required = true, allow_empty = true, doc = "The variable's value (may be empty)." },
  },
})

def("EnvironmentVariableWithSecretValue", {
  group = "job",
  constructor = true,
  summary = "An environment variable with a secret value",
  doc = "Give exactly one of value and valueSecretReference; the service never reports the value back.",
  fields = {
    { "name", "envname", required = true, doc = "The variable's name (a valid shell name, unique in the job)." },
    { "value", "string", secret = true, doc = "The secret value (printed as \"***\")." },
    { "valueSecretReference", "KeyVaultSecretReference", doc = "A Key Vault secret holding the value." },
  },
  rules = { "one_of_value" },
})

def("InputDirectory", {
  group = "job",
  constructor = true,
  summary = "An input directory, exposed to the job as $AZ_BATCHAI_INPUT_<id>",
  fields = {
    { "id", "dirid", required = true, doc = "Letters, digits and '_'; unique among the job's input directories." },
    { "path", "string", required = true, doc = "The directory's path." },
  },
})

def("OutputDirectory", {
  group = "job",
  constructor = true,
  summary = "An output directory, exposed to the job as $AZ_BATCHAI_OUTPUT_<id>",
  doc = "Its full path is pathPrefix, then the job's jobOutputDirectoryPathSegment, then pathSuffix.",
  fields = {
    { "id", "dirid", required = true, doc = "Letters, digits and '_'; unique among the job's output directories." },
    { "pathPrefix", "abspath", required = true,
      doc = "Absolute path the directory is created under (e.g. $AZ_BATCHAI_MOUNT_ROOT/nfs/models)." },
    { "pathSuffix", "string", doc = "Path appended after the job's unique segment (e.g. \"models\")." },
  },
})

def("MountVolumes", {
  group = "storage",
  constructor = true,
  summary = "File systems to mount",
  fields = {
    { "azureFileShares", "AzureFileShareReference[]", doc = "Azure File shares." },
    { "azureBlobFileSystems", "AzureBlobFileSystemReference[]", doc = "Azure Blob containers (blobfuse)." },
    { "fileServers", "FileServerReference[]", doc = "Batch AI file servers (NFS)." },
    { "unmanagedFileSystems", "UnmanagedFileSystemReference[]", doc = "Any file system with its own mount command." },
  },
})

local relative_mount_path = { "relativeMountPath", "relpath", required = true,
  doc = "Where it is mounted, relative to the mount root ($AZ_BATCHAI_JOB_MOUNT_ROOT for a job)." }

def("AzureFileShareReference", {
  group = "storage",
  constructor = true,
  summary = "An Azure File share to mount",
  fields = {
    { "accountName", "string", required = true, doc = "The storage account." },
    { "azureFileUrl", "string", required = true, doc = "The share's URL." },
    { "credentials", "AzureStorageCredentialsInfo", required = true, doc = "The account's credentials." },
    relative_mount_path,
    { "fileMode", "filemode", default = "0777", doc = "Octal mode of the files (default \"0777\")." },
    { "directoryMode", "filemode", default = "0777", doc = "Octal mode of the directories (default \"0777\")." },
  },
})

def("AzureBlobFileSystemReference", {
  group = "storage",
  constructor = true,
  summary = "An Azure Blob container to mount with blobfuse",
  fields = {
    { "accountName", "string", required = true, doc = "The storage account." },
    { "containerName", "string", required = true, doc = "The blob container." },
    { "credentials", "AzureStorageCredentialsInfo", required = true, doc = "The account's credentials." },
    relative_mount_path,
    { "mountOptions", "string", doc = "Options for blobfuse." },
  },
})

def("AzureStorageCredentialsInfo", {
  group = "storage",
  constructor = true,
  summary = "Credentials of an Azure storage account",
  doc = "Give exactly one of accountKey and accountKeySecretReference.",
  fields = {
    { "accountKey", "string", secret = true, doc = "The account key (printed as \"***\")." },
    { "accountKeySecretReference", "KeyVaultSecretReference", doc = "A Key Vault secret holding the key." },
  },
  rules = { "one_of_account_key" },
})

def("FileServerReference", {
  group = "storage",
  constructor = true,
  summary = "A Batch AI file server to mount",
  fields = {
    { "fileServer", "ResourceId", required = true, doc = "The file server's resource id." },
    { "sourceDirectory", "string", doc = "The directory to mount; the whole server when absent." },
    relative_mount_path,
    { "mountOptions", "string", doc = "Options for the mount command." },
  },
})

def("UnmanagedFileSystemReference", {
  group = "storage",
  constructor = true,
  summary = "A file system mounted by your own command",
  fields = {
    { "mountCommand", "string", required = true, doc = "The mount command; the mount path is appended to it." },
    relative_mount_path,
  },
})

-- ---- resources and responses (decode, check and encode; no constructors on `bai`) --

def("JobCreateParameters", {
  group = "resource",
  summary = "The body of a job create request: { properties = JobProperties }",
  fields = {
    { "properties", "JobProperties", required = true, doc = "The job." },
  },
})

def("JobExecutionInfo", {
  group = "resource",
  spec = "JobProperties.executionInfo (inline object)",
  summary = "How a job's run went",
  fields = {
    { "startTime", "string", read_only = true, doc = "When the job last started running." },
    { "endTime", "string", read_only = true, doc = "When the job ended (once it has)." },
    { "exitCode", "int32", read_only = true, doc = "The job's exit code (once it has ended)." },
    { "errors", "BatchAIError[]", read_only = true, doc = "Errors the service met while running the job." },
  },
})

def("BatchAIError", {
  group = "resource",
  summary = "An error met while running a job",
  fields = {
    { "code", "string", read_only = true, doc = "A stable identifier of the error." },
    { "message", "string", read_only = true, doc = "What went wrong, for people." },
    { "details", "NameValuePair[]", read_only = true, doc = "More details." },
  },
})

def("NameValuePair", {
  group = "resource",
  summary = "A name and a value",
  fields = {
    { "name", "string", doc = "The name." },
    { "value", "string", doc = "The value." },
  },
})

local function proxy_resource(properties_type, doc)
  return {
    { "id", "string", read_only = true, doc = "The resource's id." },
    { "name", "string", read_only = true, doc = "The resource's name." },
    { "type", "string", read_only = true, doc = "The resource type." },
    { "properties", properties_type, doc = doc },
  }
end

local function tracked_resource(properties_type, doc)
  local fields = proxy_resource(properties_type, doc)
  table.insert(fields, 4, { "location", "string", read_only = true, doc = "The resource's region." })
  table.insert(fields, 5, { "tags", "map", read_only = true, doc = "The resource's tags." })
  return fields
end

local function list_result(item)
  return {
    { "value", item .. "[]", read_only = true, doc = "This page's items." },
    { "nextLink", "string", read_only = true, doc = "The URL of the next page, when there is one." },
  }
end

def("Job", {
  group = "resource",
  summary = "A job as the service reports it",
  fields = proxy_resource("JobProperties", "The job's properties, with its state."),
})

def("JobListResult", { group = "resource", summary = "A page of jobs", fields = list_result("Job") })

local provisioning_state = { "provisioningState", "enum", read_only = true,
  values = { "creating", "deleting", "succeeded", "failed" }, doc = "Provisioning state of the resource." }

def("Workspace", {
  group = "resource",
  summary = "A workspace as the service reports it",
  fields = tracked_resource("WorkspaceProperties", "The workspace's state."),
})

def("WorkspaceProperties", {
  group = "resource",
  summary = "A workspace's state",
  fields = {
    { "creationTime", "string", read_only = true, doc = "When the workspace was created." },
    provisioning_state,
    { "provisioningStateTransitionTime", "string", read_only = true, doc = "When it entered that state." },
  },
})

def("WorkspaceCreateParameters", {
  group = "resource",
  summary = "The body of a workspace create request",
  fields = {
    { "location", "string", required = true, doc = "The region." },
    { "tags", "map", doc = "Tags: a table of strings." },
  },
})

def("WorkspaceUpdateParameters", {
  group = "resource",
  summary = "The body of a workspace update (PATCH) request",
  fields = { { "tags", "map", doc = "The new tags." } },
})

def("WorkspaceListResult", { group = "resource", summary = "A page of workspaces", fields = list_result("Workspace") })

def("Experiment", {
  group = "resource",
  summary = "An experiment as the service reports it",
  fields = proxy_resource("ExperimentProperties", "The experiment's state."),
})

def("ExperimentProperties", {
  group = "resource",
  summary = "An experiment's state",
  fields = {
    { "creationTime", "string", read_only = true, doc = "When the experiment was created." },
    provisioning_state,
    { "provisioningStateTransitionTime", "string", read_only = true, doc = "When it entered that state." },
  },
})

def("ExperimentListResult", { group = "resource", summary = "A page of experiments", fields = list_result("Experiment") })

def("File", {
  group = "resource",
  summary = "A file or directory in a job's output directory",
  fields = {
    { "name", "string", read_only = true, doc = "The file's name." },
    { "fileType", "enum", read_only = true, values = { "file", "directory" }, doc = "\"file\" or \"directory\"." },
    { "downloadUrl", "string", read_only = true, doc = "A URL to download the file (files only)." },
    { "properties", "FileProperties", doc = "Size and time (files only)." },
  },
})

def("FileProperties", {
  group = "resource",
  summary = "A file's size and modification time",
  fields = {
    { "lastModified", "string", read_only = true, doc = "When the file was last modified." },
    { "contentLength", "int64", read_only = true, doc = "The file's size in bytes." },
  },
})

def("FileListResult", { group = "resource", summary = "A page of output files", fields = list_result("File") })

def("RemoteLoginInformation", {
  group = "resource",
  summary = "How to log in to one node of a job",
  fields = {
    { "nodeId", "string", read_only = true, doc = "The node's id." },
    { "ipAddress", "string", read_only = true, doc = "The node's address." },
    { "port", "int32", read_only = true, doc = "The SSH port." },
  },
})

def("RemoteLoginInformationListResult", {
  group = "resource",
  summary = "A page of remote login information",
  fields = list_result("RemoteLoginInformation"),
})

def("CloudError", {
  group = "resource",
  summary = "An HTTP error response body",
  fields = { { "error", "CloudErrorBody", read_only = true, doc = "The error." } },
})

def("CloudErrorBody", {
  group = "resource",
  summary = "The error of an HTTP error response",
  fields = {
    { "code", "string", read_only = true, doc = "A stable identifier of the error." },
    { "message", "string", read_only = true, doc = "What went wrong, for people." },
    { "target", "string", read_only = true, doc = "The field or parameter at fault." },
    { "details", "CloudErrorBody[]", read_only = true, doc = "Nested errors." },
  },
})

def("OperationDisplay", {
  group = "resource",
  spec = "Operation.display (inline object)",
  summary = "How an operation is shown to people",
  fields = {
    { "provider", "string", read_only = true, doc = "The provider's name." },
    { "operation", "string", read_only = true, doc = "The operation's name." },
    { "resource", "string", read_only = true, doc = "The resource type it acts on." },
    { "description", "string", read_only = true, doc = "What it does." },
  },
})

def("Operation", {
  group = "resource",
  summary = "An operation the provider offers",
  fields = {
    { "name", "string", read_only = true, doc = "The operation's name." },
    { "display", "OperationDisplay", doc = "How it is shown." },
    { "origin", "string", read_only = true, doc = "Who may invoke it." },
    { "properties", "object", doc = "Extra properties (any JSON object)." },
  },
})

def("OperationListResult", { group = "resource", summary = "A page of operations", fields = list_result("Operation") })

return M
