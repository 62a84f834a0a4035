//! Generated tenant content that looks like what Graph returns: the properties, `@odata.type`
//! values, id shapes, timestamps and navigation collections a sync or backup will meet.

use base64::Engine;
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{Value, json};

use crate::config::Collection;
use crate::rng::Rng;

/// Collections that exist only on the beta endpoint.
const BETA_ONLY: &[&str] = &[
    "deviceManagement/configurationPolicies",
    "deviceManagement/compliancePolicies",
    "deviceManagement/groupPolicyConfigurations",
    "deviceManagement/intents",
    "deviceManagement/deviceManagementScripts",
    "deviceManagement/deviceShellScripts",
    "deviceManagement/deviceCustomAttributeShellScripts",
    "deviceManagement/deviceHealthScripts",
    "deviceManagement/deviceComplianceScripts",
    "deviceManagement/windowsAutopilotDeploymentProfiles",
    "deviceManagement/windowsFeatureUpdateProfiles",
    "deviceManagement/windowsQualityUpdateProfiles",
    "deviceManagement/windowsDriverUpdateProfiles",
    "deviceManagement/assignmentFilters",
    "deviceManagement/roleScopeTags",
    "deviceManagement/reusablePolicySettings",
    "deviceAppManagement/policySets",
];

/// Intune collections without an `assignments` navigation.
const WITHOUT_ASSIGNMENTS: &[&str] = &[
    "deviceManagement/roleScopeTags",
    "deviceManagement/roleDefinitions",
    "deviceManagement/reusablePolicySettings",
    "deviceManagement/notificationMessageTemplates",
    "deviceManagement/assignmentFilters",
];

const WORDS: &[&str] = &[
    "Baseline",
    "Finance",
    "Kiosk",
    "Pilot",
    "Contractors",
    "Executives",
    "Shared Devices",
    "Engineering",
    "Frontline",
    "BYOD",
    "Sales",
    "Legacy",
    "Ring 0",
    "Ring 1",
    "Broad",
    "Lab",
];

const PLATFORM_PREFIX: &[&str] = &["WIN", "IOS", "AND", "MAC"];

/// Builds one collection of `n` generated objects.
pub(crate) fn collection(
    seed: u64,
    tenant_id: &str,
    path: &str,
    n: usize,
    group_ids: &[String],
) -> Collection {
    let mut rng = Rng::derive(seed, &format!("{tenant_id}/{path}"));
    let mut collection = Collection {
        beta_only: BETA_ONLY.contains(&path),
        ..Collection::default()
    };
    let leaf = path.rsplit('/').next().unwrap_or(path);
    match path {
        // Settings catalog lists page by 25 (so do their settings).
        "deviceManagement/configurationPolicies" | "deviceManagement/compliancePolicies" => {
            collection.page_size = 25;
        }
        _ => {}
    }
    let intune = path.starts_with("deviceManagement/") || path.starts_with("deviceAppManagement/");
    for i in 0..n {
        let ctx = Ctx {
            index: i,
            created: timestamp(&mut rng),
        };
        let id = if path == "deviceManagement/roleScopeTags" {
            // Scope tag ids are small integers as strings; "0" is the built-in Default tag.
            i.to_string()
        } else {
            rng.guid()
        };
        let object = object_for(path, leaf, &id, &ctx, &mut rng, &mut collection);
        if intune && !WITHOUT_ASSIGNMENTS.contains(&path) {
            let assignments = assignments_for(path, leaf, &id, &mut rng, group_ids);
            collection
                .sub_resources
                .insert(format!("{id}/assignments"), assignments);
        }
        collection.objects.push(object);
    }
    collection
}

struct Ctx {
    index: usize,
    created: DateTime<Utc>,
}

impl Ctx {
    fn created(&self) -> String {
        intune_time(self.created)
    }
    fn modified(&self, rng: &mut Rng) -> String {
        intune_time(self.created + Duration::minutes(rng.below(60 * 24 * 200) as i64))
    }
    fn name(&self, prefix: &str, rng: &mut Rng) -> String {
        format!(
            "{} - {} {} {:03}",
            rng.pick(PLATFORM_PREFIX),
            prefix,
            rng.pick(WORDS),
            self.index + 1
        )
    }
}

fn timestamp(rng: &mut Rng) -> DateTime<Utc> {
    let base = Utc
        .with_ymd_and_hms(2022, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default();
    base + Duration::seconds(rng.below(3 * 365 * 24 * 3600) as i64)
        + Duration::microseconds(rng.below(1_000_000) as i64)
}

/// Intune writes seven fractional digits; keep the shape clients will parse.
fn intune_time(t: DateTime<Utc>) -> String {
    format!("{}0Z", t.format("%Y-%m-%dT%H:%M:%S%.6f"))
}

/// Directory objects use whole seconds.
fn directory_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn script(rng: &mut Rng, shell: bool) -> String {
    let body = if shell {
        format!(
            "#!/bin/zsh\n# tenantops demo script {}\ndefaults write com.apple.Safari HomePage -string 'https://intranet.contoso.com'\n",
            rng.below(10_000)
        )
    } else {
        format!(
            "# tenantops demo script {}\nSet-ItemProperty -Path 'HKLM:\\SOFTWARE\\Contoso' -Name 'Managed' -Value 1\n",
            rng.below(10_000)
        )
    };
    base64::engine::general_purpose::STANDARD.encode(body)
}

fn object_for(
    path: &str,
    leaf: &str,
    id: &str,
    ctx: &Ctx,
    rng: &mut Rng,
    collection: &mut Collection,
) -> Value {
    let created = ctx.created();
    let modified = ctx.modified(rng);
    let scope_tags = json!(["0"]);
    match path {
        "deviceManagement/deviceConfigurations" => {
            let kind = rng.pick(&[
                "windows10GeneralConfiguration",
                "windows10EndpointProtectionConfiguration",
                "windows10CustomConfiguration",
                "iosGeneralDeviceConfiguration",
                "androidWorkProfileGeneralDeviceConfiguration",
                "macOSGeneralDeviceConfiguration",
            ]);
            json!({
                "@odata.type": format!("#microsoft.graph.{kind}"),
                "id": id,
                "displayName": ctx.name("Device restrictions", rng),
                "description": "Managed by the MSP baseline",
                "createdDateTime": created,
                "lastModifiedDateTime": modified,
                "version": 1 + rng.below(12),
                "roleScopeTagIds": scope_tags,
                "supportsScopeTags": true,
                "deviceManagementApplicabilityRuleOsEdition": null,
                "deviceManagementApplicabilityRuleOsVersion": null,
                "passwordRequired": rng.chance(0.7),
                "passwordMinimumLength": 6 + rng.below(9),
            })
        }
        "deviceManagement/configurationPolicies" | "deviceManagement/compliancePolicies" => {
            let count = 1 + rng.below(60) as usize;
            let platform = rng.pick(&["windows10", "macOS", "iOS", "android"]);
            let settings: Vec<Value> = (0..count)
                .map(|n| setting_instance(n, platform, rng))
                .collect();
            collection
                .sub_resources
                .insert(format!("{id}/settings"), settings);
            let mut policy = json!({
                "id": id,
                "name": ctx.name("Settings catalog", rng),
                "description": "",
                "platforms": platform,
                "technologies": rng.pick(&["mdm", "mdm,microsoftSense", "mdm,appleRemoteManagement"]),
                "createdDateTime": created,
                "lastModifiedDateTime": modified,
                "settingCount": count,
                "creationSource": null,
                "roleScopeTagIds": scope_tags,
                "isAssigned": rng.chance(0.6),
                "templateReference": {
                    "templateId": "",
                    "templateFamily": "none",
                    "templateDisplayName": null,
                    "templateDisplayVersion": null
                }
            });
            if path == "deviceManagement/compliancePolicies" {
                collection.sub_resources.insert(
                    format!("{id}/scheduledActionsForRule"),
                    vec![scheduled_action(rng)],
                );
                if let Some(map) = policy.as_object_mut() {
                    map.remove("isAssigned");
                    map.remove("templateReference");
                }
            }
            policy
        }
        "deviceManagement/deviceCompliancePolicies" => {
            let kind = rng.pick(&[
                "windows10CompliancePolicy",
                "iosCompliancePolicy",
                "androidWorkProfileCompliancePolicy",
                "macOSCompliancePolicy",
            ]);
            collection.sub_resources.insert(
                format!("{id}/scheduledActionsForRule"),
                vec![scheduled_action(rng)],
            );
            json!({
                "@odata.type": format!("#microsoft.graph.{kind}"),
                "id": id,
                "displayName": ctx.name("Compliance", rng),
                "description": "",
                "createdDateTime": created,
                "lastModifiedDateTime": modified,
                "version": 1 + rng.below(8),
                "roleScopeTagIds": scope_tags,
                "passwordRequired": rng.chance(0.8),
                "osMinimumVersion": rng.pick(&["10.0.19045", "10.0.22631", "16.0", "13.0"]),
            })
        }
        "deviceManagement/groupPolicyConfigurations" => {
            crate::group_policy::generate_values(collection, id, &created, &modified, rng);
            json!({
                "id": id,
                "displayName": ctx.name("Administrative templates", rng),
                "description": "",
                "createdDateTime": created,
                "lastModifiedDateTime": modified,
                "roleScopeTagIds": scope_tags,
                "policyConfigurationIngestionType": "builtIn",
            })
        }
        "deviceManagement/intents" => {
            let settings: Vec<Value> = (0..1 + rng.below(10))
                .map(|_| {
                    json!({
                        "@odata.type": "#microsoft.graph.deviceManagementBooleanSettingInstance",
                        "id": rng.guid(),
                        "definitionId": format!("deviceConfiguration--windows10EndpointProtectionConfiguration_firewallRule{}", rng.below(50)),
                        "valueJson": "true",
                        "value": true,
                    })
                })
                .collect();
            collection
                .sub_resources
                .insert(format!("{id}/settings"), settings);
            json!({
                "id": id,
                "displayName": ctx.name("Security baseline", rng),
                "description": "",
                "isAssigned": rng.chance(0.5),
                "lastModifiedDateTime": modified,
                "templateId": "034ccd46-190c-4afc-adf1-ad7cc11262eb",
                "roleScopeTagIds": scope_tags,
            })
        }
        "deviceManagement/deviceManagementScripts"
        | "deviceManagement/deviceShellScripts"
        | "deviceManagement/deviceCustomAttributeShellScripts" => {
            let shell = path != "deviceManagement/deviceManagementScripts";
            collection.item_only_fields = vec!["scriptContent".into()];
            let mut object = json!({
                "id": id,
                "displayName": ctx.name("Script", rng),
                "description": "",
                "scriptContent": script(rng, shell),
                "createdDateTime": created,
                "lastModifiedDateTime": modified,
                "runAsAccount": rng.pick(&["system", "user"]),
                "fileName": if shell { "configure.sh" } else { "configure.ps1" },
                "roleScopeTagIds": scope_tags,
            });
            if let Some(map) = object.as_object_mut() {
                if shell {
                    map.insert("executionFrequency".into(), json!("PT0S"));
                    map.insert("retryCount".into(), json!(rng.below(4)));
                    map.insert("blockExecutionNotifications".into(), json!(true));
                } else {
                    map.insert("enforceSignatureCheck".into(), json!(false));
                    map.insert("runAs32Bit".into(), json!(false));
                }
                if path == "deviceManagement/deviceCustomAttributeShellScripts" {
                    map.insert(
                        "customAttributeName".into(),
                        json!(format!("attr{}", ctx.index)),
                    );
                    map.insert("customAttributeType".into(), json!("string"));
                }
            }
            object
        }
        "deviceManagement/deviceHealthScripts" | "deviceManagement/deviceComplianceScripts" => {
            let remediation = path == "deviceManagement/deviceHealthScripts";
            collection.item_only_fields = if remediation {
                vec![
                    "detectionScriptContent".into(),
                    "remediationScriptContent".into(),
                ]
            } else {
                vec!["detectionScriptContent".into()]
            };
            let mut object = json!({
                "id": id,
                "displayName": ctx.name("Remediation", rng),
                "description": "",
                "publisher": "Contoso MSP",
                "version": "1.0",
                "detectionScriptContent": script(rng, false),
                "createdDateTime": created,
                "lastModifiedDateTime": modified,
                "runAsAccount": "system",
                "enforceSignatureCheck": false,
                "runAs32Bit": false,
                "roleScopeTagIds": scope_tags,
            });
            if remediation && let Some(map) = object.as_object_mut() {
                map.insert("remediationScriptContent".into(), json!(script(rng, false)));
                map.insert("isGlobalScript".into(), json!(false));
                map.insert("deviceHealthScriptType".into(), json!("deviceHealthScript"));
            }
            object
        }
        "deviceManagement/deviceEnrollmentConfigurations" => {
            let kind = rng.pick(&[
                "windows10EnrollmentCompletionPageConfiguration",
                "deviceEnrollmentLimitConfiguration",
                "deviceEnrollmentPlatformRestrictionConfiguration",
                "deviceEnrollmentWindowsHelloForBusinessConfiguration",
            ]);
            json!({
                "@odata.type": format!("#microsoft.graph.{kind}"),
                "id": format!("{id}_{kind}"),
                "displayName": ctx.name("Enrollment", rng),
                "description": "",
                "priority": ctx.index + 1,
                "createdDateTime": created,
                "lastModifiedDateTime": modified,
                "version": 1 + rng.below(5),
                "roleScopeTagIds": scope_tags,
                "deviceEnrollmentConfigurationType": kind.trim_start_matches("deviceEnrollment"),
            })
        }
        "deviceManagement/windowsAutopilotDeploymentProfiles" => json!({
            "@odata.type": "#microsoft.graph.azureADWindowsAutopilotDeploymentProfile",
            "id": id,
            "displayName": ctx.name("Autopilot", rng),
            "description": "",
            "language": "os-default",
            "createdDateTime": created,
            "lastModifiedDateTime": modified,
            "deviceNameTemplate": "CTS-%SERIAL%",
            "deviceType": "windowsPc",
            "enableWhiteGlove": true,
            "extractHardwareHash": true,
            "roleScopeTagIds": scope_tags,
            "outOfBoxExperienceSettings": {
                "hidePrivacySettings": true,
                "hideEULA": true,
                "userType": "standard",
                "deviceUsageType": "singleUser",
                "skipKeyboardSelectionPage": true,
                "hideEscapeLink": true
            }
        }),
        "deviceManagement/windowsFeatureUpdateProfiles" => json!({
            "id": id,
            "displayName": ctx.name("Feature updates", rng),
            "description": "",
            "featureUpdateVersion": rng.pick(&["Windows 11, version 23H2", "Windows 11, version 24H2", "Windows 10, version 22H2"]),
            "createdDateTime": created,
            "lastModifiedDateTime": modified,
            "roleScopeTagIds": scope_tags,
            "deployableContentDisplayName": "Windows 11, version 24H2",
            "endOfSupportDate": "2026-10-13T00:00:00Z",
            "installLatestWindows10OnWindows11IneligibleDevice": false,
            "rolloutSettings": { "offerStartDateTimeInUTC": null, "offerEndDateTimeInUTC": null, "offerIntervalInDays": null }
        }),
        "deviceManagement/windowsQualityUpdateProfiles" => json!({
            "id": id,
            "displayName": ctx.name("Expedite", rng),
            "description": "",
            "createdDateTime": created,
            "lastModifiedDateTime": modified,
            "roleScopeTagIds": scope_tags,
            "releaseDateDisplayName": "January 9, 2024 - 2024.01 B Security Updates",
            "deployableContentDisplayName": "2024.01 B Security Updates",
            "expeditedUpdateSettings": { "qualityUpdateRelease": "2024-01-09T00:00:00Z", "daysUntilForcedReboot": 1 }
        }),
        "deviceManagement/windowsDriverUpdateProfiles" => json!({
            "id": id,
            "displayName": ctx.name("Drivers", rng),
            "description": "",
            "approvalType": rng.pick(&["manual", "automatic"]),
            "deploymentDeferralInDays": rng.below(30),
            "deviceReporting": rng.below(500),
            "newUpdates": rng.below(20),
            "createdDateTime": created,
            "lastModifiedDateTime": modified,
            "roleScopeTagIds": scope_tags,
        }),
        "deviceManagement/assignmentFilters" => json!({
            "id": id,
            "displayName": ctx.name("Filter", rng),
            "description": "",
            "platform": rng.pick(&["windows10AndLater", "iOS", "androidForWork", "macOS"]),
            "rule": format!("(device.osVersion -startsWith \"10.0.{}\")", 19000 + rng.below(4000)),
            "assignmentFilterManagementType": "devices",
            "createdDateTime": created,
            "lastModifiedDateTime": modified,
            "roleScopeTags": scope_tags,
            "payloads": [],
        }),
        "deviceManagement/roleScopeTags" => json!({
            "id": id,
            "displayName": if ctx.index == 0 { "Default".to_owned() } else { format!("Customer site {}", ctx.index) },
            "description": "",
            "isBuiltIn": ctx.index == 0,
        }),
        "deviceManagement/reusablePolicySettings" => json!({
            "id": id,
            "displayName": ctx.name("Reusable setting", rng),
            "description": "",
            "settingDefinitionId": "vendor_msft_firewall_mdmstore_global_rules_{ruleid}",
            "settingInstance": setting_instance(0, "windows10", rng)["settingInstance"].clone(),
            "createdDateTime": created,
            "lastModifiedDateTime": modified,
            "version": 1 + rng.below(5),
            "referencingConfigurationPolicyCount": rng.below(4),
        }),
        "deviceAppManagement/managedAppPolicies"
        | "deviceAppManagement/iosManagedAppProtections"
        | "deviceAppManagement/androidManagedAppProtections"
        | "deviceAppManagement/windowsManagedAppProtections" => {
            let kind = match leaf {
                "iosManagedAppProtections" => "iosManagedAppProtection",
                "androidManagedAppProtections" => "androidManagedAppProtection",
                "windowsManagedAppProtections" => "windowsManagedAppProtection",
                _ => rng.pick(&[
                    "iosManagedAppProtection",
                    "androidManagedAppProtection",
                    "targetedManagedAppConfiguration",
                ]),
            };
            collection.sub_resources.insert(
                format!("{id}/apps"),
                vec![json!({
                    "id": format!("com.microsoft.office.outlook.{}", kind.trim_end_matches("ManagedAppProtection")),
                    "mobileAppIdentifier": { "@odata.type": "#microsoft.graph.iosMobileAppIdentifier", "bundleId": "com.microsoft.office.outlook" },
                })],
            );
            json!({
                "@odata.type": format!("#microsoft.graph.{kind}"),
                "id": format!("T_{id}"),
                "displayName": ctx.name("App protection", rng),
                "description": "",
                "createdDateTime": created,
                "lastModifiedDateTime": modified,
                "roleScopeTagIds": scope_tags,
                "version": format!("\"{:016x}\"", rng.next_u64()),
                "periodOfflineBeforeAccessCheck": "PT12H",
                "pinRequired": true,
                "minimumPinLength": 4 + rng.below(3),
                "dataBackupBlocked": true,
                "isAssigned": rng.chance(0.7),
            })
        }
        "deviceAppManagement/targetedManagedAppConfigurations" => json!({
            "id": format!("A_{id}"),
            "displayName": ctx.name("App configuration", rng),
            "description": "",
            "createdDateTime": created,
            "lastModifiedDateTime": modified,
            "roleScopeTagIds": scope_tags,
            "version": format!("\"{:016x}\"", rng.next_u64()),
            "deployedAppCount": 1,
            "isAssigned": rng.chance(0.5),
            "appGroupType": "selectedPublicApps",
            "customSettings": [{ "name": "com.microsoft.outlook.EmailProfile.AccountType", "value": "ModernAuth" }],
        }),
        "deviceAppManagement/mobileAppConfigurations" => json!({
            "@odata.type": format!("#microsoft.graph.{}", rng.pick(&["iosMobileAppConfiguration", "androidManagedStoreAppConfiguration"])),
            "id": id,
            "displayName": ctx.name("Managed devices app config", rng),
            "description": "",
            "targetedMobileApps": [rng.guid()],
            "createdDateTime": created,
            "lastModifiedDateTime": modified,
            "roleScopeTagIds": scope_tags,
            "version": 1 + rng.below(5),
        }),
        "deviceAppManagement/mobileApps" => {
            let kind = rng.pick(&[
                "win32LobApp",
                "iosStoreApp",
                "androidManagedStoreApp",
                "officeSuiteApp",
                "webApp",
            ]);
            json!({
                "@odata.type": format!("#microsoft.graph.{kind}"),
                "id": id,
                "displayName": format!("{} {}", rng.pick(&["Company Portal", "Zoom", "7-Zip", "Slack", "Adobe Acrobat Reader", "Microsoft 365 Apps"]), ctx.index + 1),
                "description": "",
                "publisher": rng.pick(&["Microsoft Corporation", "Zoom", "Igor Pavlov", "Slack Technologies", "Adobe"]),
                "createdDateTime": created,
                "lastModifiedDateTime": modified,
                "isFeatured": false,
                "privacyInformationUrl": null,
                "informationUrl": null,
                "publishingState": "published",
                "isAssigned": rng.chance(0.6),
                "roleScopeTagIds": scope_tags,
                "dependentAppCount": 0,
                "supersedingAppCount": 0,
                "supersededAppCount": 0,
            })
        }
        "deviceAppManagement/policySets" => {
            collection.sub_resources.insert(
                format!("{id}/items"),
                vec![json!({
                    "@odata.type": "#microsoft.graph.deviceConfigurationPolicySetItem",
                    "id": rng.guid(),
                    "payloadId": rng.guid(),
                    "itemType": "#microsoft.graph.windows10GeneralConfiguration",
                    "displayName": "Device restrictions",
                    "status": "success",
                    "errorCode": "noError",
                    "createdDateTime": created,
                    "lastModifiedDateTime": modified,
                })],
            );
            json!({
                "id": id,
                "displayName": ctx.name("Policy set", rng),
                "description": "",
                "createdDateTime": created,
                "lastModifiedDateTime": modified,
                "status": "success",
                "errorCode": "noError",
                "roleScopeTags": scope_tags,
                "guidedDeploymentTags": [],
            })
        }
        "deviceManagement/notificationMessageTemplates" => {
            collection.sub_resources.insert(
                format!("{id}/localizedNotificationMessages"),
                vec![json!({
                    "id": format!("{id}_en-us"),
                    "lastModifiedDateTime": modified,
                    "locale": "en-us",
                    "subject": "Your device is not compliant",
                    "messageTemplate": "Please update your device to meet Contoso's requirements.",
                    "isDefault": true,
                })],
            );
            json!({
                "id": id,
                "displayName": ctx.name("Noncompliance notice", rng),
                "description": "",
                "lastModifiedDateTime": modified,
                "defaultLocale": "en-us",
                "brandingOptions": "includeCompanyLogo,includeCompanyName",
                "roleScopeTagIds": scope_tags,
            })
        }
        "deviceManagement/termsAndConditions" => json!({
            "id": id,
            "displayName": ctx.name("Terms", rng),
            "description": "",
            "createdDateTime": created,
            "lastModifiedDateTime": modified,
            "title": "Contoso acceptable use",
            "bodyText": "By enrolling this device you agree to the Contoso acceptable use policy.",
            "acceptanceStatement": "I accept",
            "version": 1 + rng.below(4),
            "roleScopeTagIds": scope_tags,
        }),
        "deviceManagement/roleDefinitions" => {
            let builtin = ctx.index < 4;
            json!({
                "@odata.type": "#microsoft.graph.deviceAndAppManagementRoleDefinition",
                "id": id,
                "displayName": if builtin {
                    ["Policy and Profile manager", "Help Desk Operator", "Read Only Operator", "Application Manager"][ctx.index].to_owned()
                } else {
                    format!("MSP tier {} operator", ctx.index - 3)
                },
                "description": "",
                "isBuiltIn": builtin,
                "roleScopeTagIds": scope_tags,
                "rolePermissions": [{
                    "resourceActions": [{
                        "allowedResourceActions": [
                            "Microsoft.Intune_DeviceConfigurations_Read",
                            "Microsoft.Intune_DeviceCompliancePolices_Read",
                            "Microsoft.Intune_ManagedApps_Read"
                        ],
                        "notAllowedResourceActions": []
                    }]
                }]
            })
        }
        "roleManagement/directory/roleDefinitions" => {
            let builtin = ctx.index < 6;
            let name = if builtin {
                [
                    "Global Administrator",
                    "Intune Administrator",
                    "Groups Administrator",
                    "Security Reader",
                    "Conditional Access Administrator",
                    "Helpdesk Administrator",
                ][ctx.index]
                    .to_owned()
            } else {
                format!("Custom directory role {}", ctx.index - 5)
            };
            json!({
                "id": id,
                "description": format!("Can manage {}", name.to_lowercase()),
                "displayName": name,
                "isBuiltIn": builtin,
                "isEnabled": true,
                "resourceScopes": ["/"],
                "templateId": id,
                "version": "1",
                "rolePermissions": [{
                    "allowedResourceActions": ["microsoft.directory/groups/standard/read", "microsoft.directory/groups/members/read"],
                    "condition": null
                }],
                "inheritsPermissionsFrom": []
            })
        }
        "identity/conditionalAccess/policies" => json!({
            "id": id,
            "templateId": null,
            "displayName": format!("CA{:03} - {} - Require MFA", ctx.index + 1, rng.pick(WORDS)),
            "createdDateTime": directory_time(ctx.created),
            "modifiedDateTime": directory_time(ctx.created + Duration::days(rng.below(200) as i64)),
            "state": rng.pick(&["enabled", "disabled", "enabledForReportingButNotEnforced"]),
            "sessionControls": null,
            "conditions": {
                "userRiskLevels": [],
                "signInRiskLevels": [],
                "clientAppTypes": ["all"],
                "platforms": null,
                "locations": null,
                "applications": { "includeApplications": ["All"], "excludeApplications": [], "includeUserActions": [] },
                "users": {
                    "includeUsers": ["All"],
                    "excludeUsers": [],
                    "includeGroups": [],
                    "excludeGroups": [rng.guid()],
                    "includeRoles": [],
                    "excludeRoles": ["62e90394-69f5-4237-9190-012177145e10"]
                }
            },
            "grantControls": { "operator": "OR", "builtInControls": ["mfa"], "customAuthenticationFactors": [], "termsOfUse": [] }
        }),
        "identity/conditionalAccess/namedLocations" => {
            if rng.chance(0.5) {
                json!({
                    "@odata.type": "#microsoft.graph.ipNamedLocation",
                    "id": id,
                    "displayName": format!("Office {} egress", ctx.index + 1),
                    "createdDateTime": directory_time(ctx.created),
                    "modifiedDateTime": directory_time(ctx.created),
                    "isTrusted": true,
                    "ipRanges": [{ "@odata.type": "#microsoft.graph.iPv4CidrRange", "cidrAddress": format!("203.0.{}.0/24", rng.below(256)) }]
                })
            } else {
                json!({
                    "@odata.type": "#microsoft.graph.countryNamedLocation",
                    "id": id,
                    "displayName": format!("Allowed countries {}", ctx.index + 1),
                    "createdDateTime": directory_time(ctx.created),
                    "modifiedDateTime": directory_time(ctx.created),
                    "countriesAndRegions": ["NL", "BE", "DE"],
                    "includeUnknownCountriesAndRegions": false,
                    "countryLookupMethod": "clientIpAddress"
                })
            }
        }
        "groups" => group(id, ctx, rng),
        _ => json!({
            "@odata.type": format!("#microsoft.graph.{}", singular(leaf)),
            "id": id,
            "displayName": ctx.name(leaf, rng),
            "description": "",
            "createdDateTime": created,
            "lastModifiedDateTime": modified,
            "version": 1 + rng.below(5),
        }),
    }
}

/// A group as the directory returns it: security, Microsoft 365 or dynamic.
fn group(id: &str, ctx: &Ctx, rng: &mut Rng) -> Value {
    let kind = rng.below(10);
    let word = rng.pick(WORDS);
    let display = format!("SG-{}-{:04}", word.replace(' ', ""), ctx.index + 1);
    let nick = display.to_lowercase().replace(['-', ' '], "");
    let (types, mail_enabled, rule): (Vec<&str>, bool, Option<String>) = match kind {
        0..=5 => (vec![], false, None),
        6..=7 => (vec!["Unified"], true, None),
        _ => (
            vec!["DynamicMembership"],
            false,
            Some(format!(
                "(device.deviceOSType -eq \"Windows\") -and (device.displayName -startsWith \"{}\")",
                word.to_uppercase().replace(' ', "")
            )),
        ),
    };
    json!({
        "id": id,
        "deletedDateTime": null,
        "classification": null,
        "createdDateTime": directory_time(ctx.created),
        "creationOptions": [],
        "description": format!("{word} devices and users"),
        "displayName": display,
        "expirationDateTime": null,
        "groupTypes": types,
        "isAssignableToRole": null,
        "mail": if mail_enabled { json!(format!("{nick}@contoso.onmicrosoft.com")) } else { Value::Null },
        "mailEnabled": mail_enabled,
        "mailNickname": nick,
        "membershipRule": rule,
        "membershipRuleProcessingState": if rule.is_some() { json!("On") } else { Value::Null },
        "onPremisesSyncEnabled": null,
        "proxyAddresses": [],
        "renewedDateTime": directory_time(ctx.created),
        "resourceBehaviorOptions": [],
        "resourceProvisioningOptions": [],
        "securityEnabled": !mail_enabled || rng.chance(0.3),
        "securityIdentifier": format!("S-1-12-1-{}-{}-{}-{}", rng.below(4_000_000_000), rng.below(4_000_000_000), rng.below(4_000_000_000), rng.below(4_000_000_000)),
        "visibility": if mail_enabled { json!("Private") } else { Value::Null },
    })
}

fn setting_instance(n: usize, platform: &str, rng: &mut Rng) -> Value {
    let area = rng.pick(&[
        "device_vendor_msft_policy_config_defender_allowrealtimemonitoring",
        "device_vendor_msft_policy_config_browser_allowpasswordmanager",
        "device_vendor_msft_bitlocker_requiredeviceencryption",
        "com.apple.applicationaccess_allowcamera",
        "device_vendor_msft_policy_config_update_activehoursstart",
    ]);
    let definition = if platform == "windows10" {
        area.to_owned()
    } else {
        format!("{area}_{platform}")
    };
    if rng.chance(0.7) {
        json!({
            "id": n.to_string(),
            "settingInstance": {
                "@odata.type": "#microsoft.graph.deviceManagementConfigurationChoiceSettingInstance",
                "settingDefinitionId": definition,
                "settingInstanceTemplateReference": null,
                "choiceSettingValue": {
                    "settingValueTemplateReference": null,
                    "value": format!("{definition}_{}", rng.below(2)),
                    "children": []
                }
            }
        })
    } else {
        json!({
            "id": n.to_string(),
            "settingInstance": {
                "@odata.type": "#microsoft.graph.deviceManagementConfigurationSimpleSettingInstance",
                "settingDefinitionId": definition,
                "settingInstanceTemplateReference": null,
                "simpleSettingValue": {
                    "@odata.type": "#microsoft.graph.deviceManagementConfigurationIntegerSettingValue",
                    "settingValueTemplateReference": null,
                    "value": rng.below(24)
                }
            }
        })
    }
}

fn scheduled_action(rng: &mut Rng) -> Value {
    json!({
        "id": rng.guid(),
        "ruleName": null,
        "scheduledActionConfigurations": [{
            "id": rng.guid(),
            "gracePeriodHours": 0,
            "actionType": "block",
            "notificationTemplateId": "00000000-0000-0000-0000-000000000000",
            "notificationMessageCCList": []
        }]
    })
}

fn assignments_for(
    path: &str,
    leaf: &str,
    object_id: &str,
    rng: &mut Rng,
    group_ids: &[String],
) -> Vec<Value> {
    let kind = assignment_type(path, leaf);
    (0..rng.below(4))
        .map(|_| {
            let target = match rng.below(5) {
                0 => json!({
                    "@odata.type": "#microsoft.graph.allDevicesAssignmentTarget",
                    "deviceAndAppManagementAssignmentFilterId": null,
                    "deviceAndAppManagementAssignmentFilterType": "none"
                }),
                1 => json!({
                    "@odata.type": "#microsoft.graph.exclusionGroupAssignmentTarget",
                    "deviceAndAppManagementAssignmentFilterId": null,
                    "deviceAndAppManagementAssignmentFilterType": "none",
                    "groupId": group_id(rng, group_ids)
                }),
                _ => json!({
                    "@odata.type": "#microsoft.graph.groupAssignmentTarget",
                    "deviceAndAppManagementAssignmentFilterId": null,
                    "deviceAndAppManagementAssignmentFilterType": "none",
                    "groupId": group_id(rng, group_ids)
                }),
            };
            let target_key = target
                .get("groupId")
                .and_then(Value::as_str)
                .unwrap_or("adadadad-808e-44e2-905a-0b7873a8a531")
                .to_owned();
            json!({
                "@odata.type": format!("#microsoft.graph.{kind}"),
                "id": format!("{object_id}_{target_key}"),
                "target": target,
            })
        })
        .collect()
}

fn group_id(rng: &mut Rng, group_ids: &[String]) -> String {
    if group_ids.is_empty() {
        rng.guid()
    } else {
        let index = rng.below(group_ids.len() as u64) as usize;
        group_ids.get(index).cloned().unwrap_or_default()
    }
}

fn assignment_type(path: &str, leaf: &str) -> String {
    match path {
        "deviceManagement/configurationPolicies" => {
            "deviceManagementConfigurationPolicyAssignment".into()
        }
        "deviceManagement/compliancePolicies" => {
            "deviceManagementComplianceSettingsPolicyAssignment".into()
        }
        "deviceAppManagement/mobileApps" => "mobileAppAssignment".into(),
        p if p.starts_with("deviceAppManagement/") && p.contains("Protection") => {
            "targetedManagedAppPolicyAssignment".into()
        }
        "deviceAppManagement/managedAppPolicies"
        | "deviceAppManagement/targetedManagedAppConfigurations" => {
            "targetedManagedAppPolicyAssignment".into()
        }
        _ => format!("{}Assignment", singular(leaf)),
    }
}

/// `deviceConfigurations` → `deviceConfiguration`; good enough for type names.
pub(crate) fn singular(leaf: &str) -> String {
    if let Some(stem) = leaf.strip_suffix("ies") {
        format!("{stem}y")
    } else if let Some(stem) = leaf.strip_suffix('s') {
        stem.to_owned()
    } else {
        leaf.to_owned()
    }
}

/// Generated groups keyed by index, for tests that add objects between syncs.
pub fn groups(seed: u64, label: &str, n: usize) -> Vec<Value> {
    let mut rng = Rng::derive(seed, label);
    (0..n)
        .map(|index| {
            let ctx = Ctx {
                index,
                created: timestamp(&mut rng),
            };
            let id = rng.guid();
            group(&id, &ctx, &mut rng)
        })
        .collect()
}
