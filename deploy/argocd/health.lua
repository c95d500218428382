-- Argo CD health check for workspaces.lustre.dev/LustreWorkspace.
-- Healthy when the operator has observed the latest spec and Ready is True; Degraded when
-- Ready is False for a reason someone must act on; Progressing otherwise (creating,
-- resizing, waiting on AWS, deleting).
local hs = {}
local problems = {
  InvalidSpec = true, ClassNotFound = true, FileSystemFailed = true,
  DataRepositoryFailed = true, AwsRejected = true, AccessDenied = true,
  LimitExceeded = true, AdoptionRefused = true,
}
if obj.metadata ~= nil and obj.metadata.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  hs.message = "Deleting"
  if obj.status ~= nil and obj.status.conditions ~= nil then
    for _, c in ipairs(obj.status.conditions) do
      if c.type == "Ready" and c.reason == "ClaimInUse" then
        hs.message = "Deleting: " .. (c.message or "pods still use the claim")
      end
    end
  end
  return hs
end
if obj.status == nil or obj.status.observedGeneration == nil
    or obj.metadata.generation == nil
    or obj.status.observedGeneration < obj.metadata.generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe the latest spec"
  return hs
end
local ready = nil
if obj.status.conditions ~= nil then
  for _, c in ipairs(obj.status.conditions) do
    if c.type == "Ready" then
      ready = c
    end
  end
end
if ready == nil then
  hs.status = "Progressing"
  hs.message = "No Ready condition yet"
elseif ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message or "Ready"
elseif problems[ready.reason] then
  hs.status = "Degraded"
  hs.message = ready.reason .. ": " .. (ready.message or "")
else
  hs.status = "Progressing"
  hs.message = (ready.reason or "Progressing") .. ": " .. (ready.message or "")
end
return hs
